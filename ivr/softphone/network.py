"""The softphone's link to the Twilio stand-in: what the app asks Twilio to do to a live call, done on the call.

Twilio's REST API changes calls the softphone is playing: a redirect moves the call to new TwiML,
a Payments session asks the caller for card fields while the agent listens. The stand-in
(``ivr.softphone.twilio_api``) queues those requests by call; this module fetches and carries them out.
"""

import time
from datetime import date

import requests

from . import cards
from .caller import CallerHangup
from .cards import CARD_NUMBER, EXPIRY, POSTAL_CODE, SECURITY_CODE
from .session import Session

POLL_S = 0.3
_PARAMS = {CARD_NUMBER: "PaymentCardNumber", EXPIRY: "ExpirationDate", SECURITY_CODE: "SecurityCode",
           POSTAL_CODE: "PaymentCardPostalCode"}


class Network:
    """One call as the stand-in knows it: started, ended, and the requests waiting for it."""

    def __init__(self, api: str, session: Session) -> None:
        self.api = api.rstrip("/")
        self.session = session
        self.http = requests.Session()

    def started(self) -> None:
        """Tell the stand-in the call is live (Twilio knows every call it carries)."""
        self.http.post(f"{self.api}/_softphone/calls", timeout=5, data={
            "CallSid": self.session.call_sid, "From": self.session.from_, "To": self.session.to,
            "Direction": self.session.direction})

    def ended(self, call_status: str) -> None:
        """Tell the stand-in the call is over: its REST API then answers 21220 for it."""
        self.http.post(f"{self.api}/_softphone/calls/{self.session.call_sid}/ended", timeout=5,
                       data={"CallStatus": call_status})

    def events(self) -> list[dict]:
        """Redirects and Payments requests made for this call since the last look."""
        reply = self.http.get(f"{self.api}/_softphone/calls/{self.session.call_sid}/events", timeout=5)
        return reply.json()["events"]


def answer(api: str) -> dict | None:
    """Answer the oldest call the app asked the stand-in to place (its Calls create form), or None."""
    reply = requests.post(f"{api.rstrip('/')}/_softphone/answer", timeout=5)
    return reply.json()["call"] if reply.status_code == 200 else None


class AssistedRun:
    """One agent-assisted Payments session: the caller keys what the agent asks, Twilio reports it."""

    def __init__(self, event: dict, caller, session: Session, printer, note) -> None:
        self.sid = event["sid"]
        self.callback = event.get("StatusCallback")
        self.wanted = [CARD_NUMBER, EXPIRY]
        if event.get("SecurityCode", "true").lower() != "false":
            self.wanted.append(SECURITY_CODE)
        if event.get("PostalCode", "true").lower() != "false":
            self.wanted.append(POSTAL_CODE)
        self.valid_types = tuple((event.get("ValidCardTypes") or "visa mastercard amex").split())
        self.caller = caller
        self.session = session
        self.printer = printer
        self.note = note
        self.values: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.started_pay = False

    def handle(self, event: dict) -> bool:
        """Carry out one Payments update; True once the session is over (completed or cancelled)."""
        if event.get("Capture"):
            self._capture(event["Capture"])
            return False
        status = event.get("Status")
        if status == "complete":
            missing = [f for f in self.wanted if f not in self.values]
            if missing:
                self._tell(Result="payment-connector-error", PaymentError="missing " + ",".join(missing))
            else:
                token = cards.payment_token(self.values[CARD_NUMBER], cards.card_brand(self.values[CARD_NUMBER]) or "")
                self._tell(Result="success", PaymentToken=token, ProfileId=cards.profile_id(token))
            return True
        if status == "cancel":
            self._tell(Result="payment-cancelled")
            return True
        return False

    def _capture(self, field: str) -> None:
        self.printer.line(f"  [the agent asks the caller for the {field.replace('-', ' ')}]")
        try:
            if not self.started_pay:
                self.caller.start_pay()
                self.started_pay = True
            self.attempts[field] = self.attempts.get(field, 0) + 1
            entry = self.caller.pay_entry(field, self.attempts[field]).rstrip("#")
        except (CallerHangup, KeyboardInterrupt):
            entry = ""
        error = self._check(field, entry)
        self.note(f"caller keyed the {field} ({len(entry)} keys, hidden)" + (f": {error}" if error else ""))
        if error is None:
            self.values[field] = entry
        extra = {"ErrorType": error} if error else {}
        self._tell(Capture=field, PartialResult="false",
                   Required=",".join(f for f in self.wanted if f not in self.values), **extra)

    def _check(self, field: str, entry: str) -> str | None:
        if not entry:
            return "input-timeout"
        if field == CARD_NUMBER:
            return cards.check_card_number(entry, self.valid_types)
        if field == EXPIRY:
            return cards.check_expiry(entry, date.today())
        if field == SECURITY_CODE:
            return cards.check_security_code(entry, cards.card_brand(self.values.get(CARD_NUMBER, "")))
        return cards.check_postal_code(entry, None)

    def _masked(self) -> dict[str, str]:
        """What Twilio reports of the fields so far: never the number or the code in clear."""
        out = {}
        for field, value in self.values.items():
            if field == CARD_NUMBER:
                out["PaymentCardNumber"] = cards.mask_number(value)
                out["PaymentCardType"] = cards.card_brand(value) or ""
            elif field == EXPIRY:
                out["ExpirationDate"] = cards.expiry_mmyy(value)
            elif field == SECURITY_CODE:
                out["SecurityCode"] = "*" * len(value)
            else:
                out[_PARAMS[field]] = value
        return out

    def _tell(self, **params: str) -> None:
        if not self.callback:
            return
        reply = self.session.request("Payments status callback", self.callback, "POST",
                                     {"Sid": self.sid, **self._masked(), **params}, twiml=False)
        self.printer.step(reply.step)


def wait_on_agent(interpreter, wait_s: float):
    """While the caller talks to an agent: follow a redirect (a Document) or return None when the agent is done."""
    network: Network = interpreter.network
    assisted: AssistedRun | None = None
    deadline = time.monotonic() + wait_s
    interpreter.printer.line(f"  [talking to the agent; the agent's console can act on {network.session.call_sid}]")
    while time.monotonic() < deadline:
        for event in network.events():
            if event["kind"] == "redirect":
                interpreter.printer.line("  [Twilio moves the call to new TwiML: the agent's leg ends]")
                return interpreter.fetch("Redirect (Calls update)", event["url"], event.get("method", "POST"))
            if event["kind"] == "payment":
                interpreter.printer.line("  [Twilio starts a Payments session on the call]")
                assisted = AssistedRun(event, interpreter.caller, network.session, interpreter.printer,
                                       lambda text: interpreter.printer.line(f"  ({text})"))
            elif assisted is not None and assisted.handle(event):
                interpreter.printer.line("  [the payment session is over; the agent hangs up]")
                return None
        time.sleep(POLL_S)
    interpreter.printer.line(f"  [no word from the agent's console in {wait_s:g} s; the agent hangs up]")
    return None
