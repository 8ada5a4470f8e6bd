"""``<Pay>`` as Twilio runs it with the Stripe connector: prompts, checks, retries, token."""

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urljoin

from . import cards
from .caller import CallerHangup
from .cards import CARD_NUMBER, EXPIRY, POSTAL_CODE, SECURITY_CODE

PROCESSING = "payment-processing"
_LABELS = {
    CARD_NUMBER: "card number",
    EXPIRY: "expiry",
    SECURITY_CODE: "security code",
    POSTAL_CODE: "ZIP code",
}


def twiml_int(value: str | None, default: int) -> int:
    """A TwiML integer attribute; Twilio falls back to the default for a bad value (a warning)."""
    return int(value) if value and value.strip().isdigit() else default


class StarPressed(Exception):
    """The caller pressed ``*``, which ends ``<Pay>``."""


@dataclass(frozen=True)
class PaySpec:
    """The ``<Pay>`` attributes the emulation honours, with Twilio's defaults."""

    action: str
    status_callback: str | None
    status_callback_method: str
    max_attempts: int
    security_code: bool
    postal_code: str  # "true", "false", or a literal code sent without asking
    min_postal_code_length: int | None
    valid_card_types: tuple[str, ...]
    language: str
    charge_amount: str | None
    prompts: tuple[ET.Element, ...]

    @classmethod
    def from_element(cls, el: ET.Element, document_url: str) -> "PaySpec":
        """Read a ``<Pay>`` element; relative URLs resolve against the document's URL."""
        callback = el.get("statusCallback")
        min_zip = el.get("minPostalCodeLength")
        return cls(
            action=urljoin(document_url, el.get("action") or ""),
            status_callback=urljoin(document_url, callback) if callback else None,
            status_callback_method=el.get("statusCallbackMethod", "POST"),
            max_attempts=max(1, twiml_int(el.get("maxAttempts"), 1)),
            security_code=el.get("securityCode", "true").lower() != "false",
            postal_code=el.get("postalCode", "true"),
            min_postal_code_length=twiml_int(min_zip, 0) or None,
            valid_card_types=tuple((el.get("validCardTypes") or "visa mastercard amex").split()),
            language=el.get("language", "en-US"),
            charge_amount=el.get("chargeAmount"),
            prompts=tuple(el.findall("Prompt")),
        )

    def fields(self) -> list[str]:
        """The fields the caller is asked for, in Twilio's order."""
        wanted = [CARD_NUMBER, EXPIRY]
        if self.security_code:
            wanted.append(SECURITY_CODE)
        if self.postal_code.lower() == "true":
            wanted.append(POSTAL_CODE)
        return wanted

    def prompt_for(
        self, field: str, attempt: int, error: str | None, brand: str | None
    ) -> ET.Element | None:
        """The first ``<Prompt>`` matching this field, attempt, error and card type."""
        for prompt in self.prompts:
            if prompt.get("for") != field:
                continue
            if prompt.get("attempt") and str(attempt) not in prompt.get("attempt", "").split():
                continue
            if prompt.get("errorType") and (error or "") not in prompt.get("errorType", "").split():
                continue
            if prompt.get("cardType") and (brand or "") not in prompt.get("cardType", "").split():
                continue
            return prompt
        return None


class PayRun:
    """One ``<Pay>``: asks each field, checks it like Twilio, builds the ``action`` parameters."""

    def __init__(
        self,
        spec: PaySpec,
        caller,
        notify: Callable[[dict[str, str]], None],
        show: Callable[[ET.Element | None, str], None],
        note: Callable[[str], None],
        today: date | None = None,
    ) -> None:
        self.spec = spec
        self.caller = caller
        self.notify = notify  # posts to <Pay statusCallback>
        self.show = show  # plays a <Prompt> (or Twilio's own wording)
        self.note = note
        self.today = today or date.today()
        self.values: dict[str, str] = {}
        self.brand: str | None = None

    def run(self) -> tuple[dict[str, str], bool]:
        """Capture the card; return the ``action`` parameters and whether the caller hung up."""
        if self.spec.charge_amount not in (None, "", "0", "0.00"):
            self.note(
                "chargeAmount is set: the softphone only emulates tokenize mode; tokenizing instead"
            )
        try:
            self.caller.start_pay()
            for field in self.spec.fields():
                error = self._capture(field)
                if error:
                    # Undocumented code for exhausted retries; 64019 = "payment info incomplete".
                    failed = self._result(
                        "too-many-failed-attempts", PaymentError=error, PayErrorCode="64019"
                    )
                    return failed, False
        except StarPressed:
            return self._result("caller-interrupted-with-star"), False
        except (CallerHangup, KeyboardInterrupt):
            return self._result("caller-hung-up"), True
        self._status(PROCESSING, 1)
        self.show(self.spec.prompt_for(PROCESSING, 1, None, self.brand), PROCESSING)
        token = cards.payment_token(self.values[CARD_NUMBER], self.brand or "")
        # The Stripe connector reports the customer it keeps the PaymentMethod on as ProfileId.
        return self._result("success", PaymentToken=token, ProfileId=cards.profile_id(token)), False

    def _capture(self, field: str) -> str | None:
        """Ask for ``field`` up to ``maxAttempts`` times; the last error if every attempt failed."""
        error = None
        for attempt in range(1, self.spec.max_attempts + 1):
            self._status(field, attempt)
            self.show(self.spec.prompt_for(field, attempt, error, self.brand), field)
            entry = self.caller.pay_entry(field, attempt)
            if "*" in entry:
                raise StarPressed
            entry = entry.rstrip("#")
            error = self._check(field, entry)
            shown = f"{len(entry)} keys, hidden" if entry else "silence"
            self.note(
                f"caller typed the {_LABELS[field]} ({shown})" + (f": {error}" if error else "")
            )
            if error is None:
                self.values[field] = entry
                if field == CARD_NUMBER:
                    self.brand = cards.card_brand(entry)
                return None
            self._status(field, attempt, error)
        return error

    def _check(self, field: str, entry: str) -> str | None:
        """Twilio's ``ErrorType`` for this entry, or None."""
        if not entry:
            return "input-timeout"
        if field == CARD_NUMBER:
            return cards.check_card_number(entry, self.spec.valid_card_types)
        if field == EXPIRY:
            return cards.check_expiry(entry, self.today)
        if field == SECURITY_CODE:
            return cards.check_security_code(entry, self.brand)
        return cards.check_postal_code(entry, self.spec.min_postal_code_length)

    def _masked(self) -> dict[str, str]:
        """What has been captured so far, as Twilio reports it (never the number, CVC in clear)."""
        out: dict[str, str] = {}
        if CARD_NUMBER in self.values:
            out["PaymentCardNumber"] = cards.mask_number(self.values[CARD_NUMBER])
            out["PaymentCardType"] = self.brand or ""
        if EXPIRY in self.values:
            out["ExpirationDate"] = cards.expiry_mmyy(self.values[EXPIRY])
        if SECURITY_CODE in self.values:
            out["SecurityCode"] = "*" * len(self.values[SECURITY_CODE])
        if POSTAL_CODE in self.values:
            out["PaymentCardPostalCode"] = self.values[POSTAL_CODE]
        elif self.spec.postal_code.lower() not in {"true", "false"}:
            out["PaymentCardPostalCode"] = self.spec.postal_code
        return out

    def _result(self, result: str, **extra: str) -> dict[str, str]:
        """The ``action`` parameters for ``result``."""
        params = {"Result": result}
        if "PaymentToken" in extra:
            params["PaymentToken"] = extra.pop("PaymentToken")
        params["PaymentMethod"] = "credit-card"
        params.update(self._masked())
        params.update(extra)
        return params

    def _status(self, step: str, attempt: int, error: str | None = None) -> None:
        """Tell ``<Pay statusCallback>`` where the capture is."""
        if not self.spec.status_callback:
            return
        params = {"For": step, "Attempt": str(attempt)}
        if error:
            params["ErrorType"] = error
        if CARD_NUMBER in self.values:
            params["PaymentCardNumber"] = cards.mask_number(self.values[CARD_NUMBER])
            params["PaymentCardType"] = self.brand or ""
        self.notify(params)
