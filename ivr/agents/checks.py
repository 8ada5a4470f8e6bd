"""Checks for transfers and assisted payments: the account can pay; the call is live and ours."""

import secrets
from typing import Any

import sqlalchemy as sa
from flask import current_app

from prompts.amounts import decimal

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..twilio.adapter import CallInfo, TwilioApiError
from ..twilio.client import twilio_rest


class Problem(Exception):
    """An API answer other than success: HTTP status, a stable error code, a sentence for people."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def new_id(prefix: str) -> str:
    """A random public id such as ``tr_3f9a…``: ids say nothing about each other."""
    return prefix + secrets.token_hex(8)


def find_account(account_number: str) -> Account:
    """The account, or a 404 problem."""
    account = db.session.scalar(sa.select(Account).where(Account.account_number == account_number))
    if account is None:
        raise Problem(404, "unknown_account", f"No account {mask(account_number)} was found.")
    return account


def payable_amount(account: Account, amount_cents: int | None) -> int:
    """The amount to take: as asked or the balance, within the co-op's limits (else a 422)."""
    cfg = current_app.config
    if account.status != "active":
        raise Problem(
            422,
            "account_not_payable",
            f"Account {mask(account.account_number)} does not take phone payments "
            f"({account.status}).",
        )
    amount = account.balance_cents if amount_cents is None else amount_cents
    if amount <= 0:
        raise Problem(
            422,
            "nothing_due",
            "The account has nothing to pay; give an amount.",
            errors={"amount": "the balance is not above zero"},
        )
    limit = (
        cfg["MAX_PAYMENT_CENTS"]
        if cfg.get("MAX_PAYMENT_CENTS") is not None
        else account.balance_cents
    )
    if amount > limit:
        raise Problem(
            422,
            "invalid_amount",
            f"The amount is above the balance of ${decimal(limit)}.",
            errors={"amount": f"must be at most {decimal(limit)}"},
        )
    minimum = int(cfg.get("MIN_PAYMENT_CENTS") or 0)
    if amount < minimum:
        raise Problem(
            422,
            "invalid_amount",
            f"The amount must be at least ${decimal(minimum)}.",
            errors={"amount": f"must be at least {decimal(minimum)}"},
        )
    return amount


def twilio_problem(exc: TwilioApiError, call_sid: str) -> Problem:
    """Turn a Twilio REST failure about ``call_sid`` into the API's answer."""
    if exc.http_status == 404 or exc.code == 20404:
        return Problem(
            409, "call_unknown", f"Twilio has no call {call_sid} on this co-op's account."
        )
    if exc.code == 21220:
        return Problem(409, "call_not_live", f"Call {call_sid} is no longer in progress.")
    if exc.retryable:
        return Problem(
            503,
            "twilio_unavailable",
            "Twilio could not be reached; try again in a moment.",
            retry_after=5,
        )
    return Problem(
        502, "twilio_error", f"Twilio refused the request (error {exc.code or exc.http_status})."
    )


def live_call(call_sid: str) -> CallInfo:
    """The member's call, checked with Twilio: in progress, on our account, not the agent's leg."""
    try:
        info = twilio_rest().fetch_call(call_sid)
    except TwilioApiError as exc:
        raise twilio_problem(exc, call_sid) from None
    if info.account_sid and info.account_sid != current_app.config["TWILIO_ACCOUNT_SID"]:
        raise Problem(
            409, "call_not_ours", f"Call {call_sid} does not belong to this co-op's Twilio account."
        )
    if info.status != "in-progress":
        raise Problem(409, "call_not_live", f"Call {call_sid} is {info.status}, not in progress.")
    if info.direction == "outbound-dial":
        raise Problem(
            409,
            "agent_leg",
            "That SID is the leg dialled to the agent; give the member's call SID (its parent).",
        )
    return info
