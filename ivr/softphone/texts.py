"""``ivr call --text``: text the co-op's number as Twilio delivers an incoming SMS, and show the replies."""

import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from .session import CONNECT_TIMEOUT_S, MAX_TWIML_BYTES, RESPONSE_TIMEOUT_S, TWIML_TYPES, origin, sign
from .transcript import Printer

SMS_PATH = "/twilio/sms"  # the number's "A message comes in" webhook (contract)
MESSAGING_VERBS = frozenset({"Message", "Redirect"})


@dataclass
class TextStep:
    """One text the member sent and what came back."""

    body: str
    status: int | None = None
    ms: int = 0
    replies: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class TextsResult:
    """Every text of one ``ivr call --text`` run and the application errors they met."""

    from_: str
    to: str
    url: str
    steps: list[TextStep] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every application error, in order."""
        return [s.problem for s in self.steps if s.problem]

    @property
    def exit_code(self) -> int:
        """0 when every answer was TwiML Twilio accepts, else 1."""
        return 1 if self.problems else 0

    def to_json(self) -> str:
        """The exchange as indented JSON."""
        data: dict[str, Any] = {"from": self.from_, "to": self.to, "url": self.url,
                                "steps": [asdict(s) for s in self.steps], "problems": self.problems,
                                "exit_code": self.exit_code}
        return json.dumps(data, indent=2, ensure_ascii=False)


def send_texts(url: str, bodies: Sequence[str], *, from_: str, to: str, account_sid: str, auth_token: str,
               printer: Printer, timeout_s: float = RESPONSE_TIMEOUT_S) -> TextsResult:
    """Text each of ``bodies`` in turn to ``{origin of url}/twilio/sms``, signed as Twilio signs it."""
    sms_url = origin(url) + SMS_PATH
    result = TextsResult(from_=from_, to=to, url=sms_url)
    printer.line(f"texting {to} from {from_}: {sms_url}")
    http = requests.Session()
    for body in bodies:
        sid = "SM" + secrets.token_hex(16)
        params = {
            "AccountSid": account_sid, "ApiVersion": "2010-04-01", "Body": body, "From": from_,
            "MessageSid": sid, "NumMedia": "0", "NumSegments": "1", "SmsMessageSid": sid, "SmsSid": sid,
            "SmsStatus": "received", "To": to,
        }
        step = TextStep(body)
        result.steps.append(step)
        printer.line(f"  > {body}")
        started = time.perf_counter()
        try:
            response = http.post(sms_url, data=params, headers={"X-Twilio-Signature": sign(sms_url, params, auth_token),
                                                                 "User-Agent": "TwilioProxy/1.1"},
                                 timeout=(CONNECT_TIMEOUT_S, timeout_s), allow_redirects=False)
        except requests.RequestException as exc:
            step.problem = f"nothing answered at {sms_url} ({type(exc).__name__}; error 11200)"
        else:
            step.status = response.status_code
            step.problem = _check(step, response)
        step.ms = round((time.perf_counter() - started) * 1000)
        for reply in step.replies:
            printer.line(f"  < {reply}")
        if step.problem:
            printer.line(f"  !! {step.problem}")
    return result


def _check(step: TextStep, response: requests.Response) -> str | None:
    """Twilio's checks of a messaging answer; the replies go into ``step``; the problem, if any, is returned."""
    if response.status_code != 200:
        return f"the server answered {response.status_code} (error 11200: Twilio sends no reply)"
    mime = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if mime not in TWIML_TYPES:
        return f"the server answered {mime or 'no Content-Type'} (error 12300)"
    if len(response.content) > MAX_TWIML_BYTES:
        return f"the server answered more than {MAX_TWIML_BYTES} bytes (error 11750)"
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        return f"the server answered a document that is not well-formed XML ({exc}; error 12100)"
    if root.tag != "Response":
        return f"the server answered <{root.tag}> instead of <Response> (error 12100)"
    unknown = [child.tag for child in root if child.tag not in MESSAGING_VERBS]
    if unknown:
        return f"the server answered messaging TwiML with an unknown verb <{unknown[0]}> (error 12200)"
    step.replies = ["".join(child.itertext()).strip() for child in root if child.tag == "Message"]
    return None
