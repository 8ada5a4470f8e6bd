"""Check what an agent sends: JSON shape, call SID, account, amount, return_to, callback URL."""

import ipaddress
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request

from ..billing.accounts_csv import normalise_account_number
from ..phones import to_e164

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
SIP_ADDRESS = re.compile(r"^sips?:[^\s@<>\"]+@[^\s<>\"]+$")
AMOUNT_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
MAX_AMOUNT = Decimal("1000000")  # <Pay> and the Payments API refuse more


class Invalid(Exception):
    """The request is malformed; ``errors`` maps each bad field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class PayRequest:
    """A checked request to take a payment on a live call."""

    call_sid: str
    account_number: str
    amount_cents: int | None  # None: the balance
    return_to: str | None = None
    status_callback: str | None = None


def json_body() -> dict[str, Any]:
    """The request's JSON object; decimals stay exact (``50.1`` is never a float).

    :raises Invalid: not JSON, or not an object.
    """
    try:
        data = json.loads(request.get_data(cache=True) or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise Invalid({"body": "must be a JSON object"}) from None
    if not isinstance(data, dict):
        raise Invalid({"body": "must be a JSON object"})
    return data


def parse_amount(value: Any) -> int:
    """Dollars as a string or number with at most two decimals, above zero, to cents.

    :raises ValueError: with the reason.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a number of dollars, e.g. "50.25"')
    text = value.strip() if isinstance(value, str) else str(value)
    if isinstance(value, str) and not AMOUNT_TEXT.fullmatch(text):
        raise ValueError('must be a number of dollars, e.g. "50.25"')
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError('must be a number of dollars, e.g. "50.25"') from None
    if not amount.is_finite():
        raise ValueError('must be a number of dollars, e.g. "50.25"')
    if amount <= 0:
        raise ValueError("must be more than zero")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("may have at most two decimals")
    if amount >= MAX_AMOUNT:
        raise ValueError("is too large")
    return int(amount * 100)


def _status_callback(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise ValueError("must be an absolute http(s) URL of at most 500 characters")
    parts = urlsplit(value.strip())
    production = current_app.config.get("PRODUCTION")
    allowed = ("https",) if production else ("http", "https")
    if parts.scheme not in allowed or not parts.hostname:
        raise ValueError("must be an absolute " + " or ".join(allowed) + " URL")
    host = parts.hostname.lower().rstrip(".")
    hosts = current_app.config.get("AGENT_CALLBACK_HOSTS") or ()
    if hosts and not any(host == h or host.endswith("." + h) for h in hosts):
        raise ValueError("host is not in AGENT_CALLBACK_HOSTS")
    if production and _internal(host):
        raise ValueError("must be a public host, not a loopback or private address")
    return value.strip()


def _internal(host: str) -> bool:
    """Loopback, private, link-local and similar addresses written as the URL's host."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: resolved when the callback is sent
    return not address.is_global


def _return_to(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a phone number or a SIP address")
    text = value.strip()
    if text.lower().startswith("sip"):
        if SIP_ADDRESS.fullmatch(text) and len(text) <= 200:
            return text
        raise ValueError("must be a SIP address like sip:agent@pbx.example.coop")
    number = to_e164(text)
    if number is None:
        raise ValueError("must be a valid phone number, e.g. +12025550100")
    return number


def parse_pay_request(data: dict[str, Any], *, transfer: bool) -> PayRequest:
    """Check a transfer (``transfer=True``) or assisted-payment request body.

    :raises Invalid: listing every bad field; unknown fields are refused so a typo never
        silently falls back to a default (e.g. the full balance).
    """
    allowed = {"call_sid", "account_number", "amount"}
    if transfer:
        allowed |= {"return_to", "status_callback"}
    errors: dict[str, str] = {}
    for name in sorted(set(data) - allowed):
        errors[name] = "is not a known field"

    call_sid = data.get("call_sid")
    if not isinstance(call_sid, str) or not CALL_SID.fullmatch(call_sid.strip()):
        errors["call_sid"] = "must be a Twilio call SID (CA followed by 32 hex digits)"
    account_number = ""
    raw_account = data.get("account_number")
    if isinstance(raw_account, int) and not isinstance(raw_account, bool):
        raw_account = str(raw_account)
    if not isinstance(raw_account, str) or not raw_account.strip():
        errors["account_number"] = "is required"
    else:
        try:
            account_number = normalise_account_number(raw_account)
        except ValueError as exc:
            errors["account_number"] = str(exc)
    amount_cents = None
    if data.get("amount") is not None:
        try:
            amount_cents = parse_amount(data["amount"])
        except ValueError as exc:
            errors["amount"] = str(exc)
    return_to = status_callback = None
    for name, parse in (("return_to", _return_to), ("status_callback", _status_callback)):
        if transfer and data.get(name) not in (None, ""):
            try:
                value = parse(data[name])
            except ValueError as exc:
                errors[name] = str(exc)
            else:
                if name == "return_to":
                    return_to = value
                else:
                    status_callback = value
    if errors:
        raise Invalid(errors)
    return PayRequest(
        call_sid=str(call_sid).strip(),
        account_number=account_number,
        amount_cents=amount_cents,
        return_to=return_to,
        status_callback=status_callback,
    )
