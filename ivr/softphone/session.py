"""The Twilio side of the wire: standard voice params, signed requests, Twilio's answer checks."""

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from ivr.twilio.adapter import compute_signature

from .transcript import Step, redact

MAX_TWIML_BYTES = 64 * 1024  # Twilio error 11750 above this
RESPONSE_TIMEOUT_S = 15.0  # Twilio error 11205: the whole answer must arrive within 15 s
CONNECT_TIMEOUT_S = 10.0  # two 5-second connection attempts
TWIML_TYPES = frozenset({"text/xml", "application/xml"})
VOICE_VERBS = frozenset(
    {
        "Say",
        "Play",
        "Pause",
        "Gather",
        "Redirect",
        "Pay",
        "Dial",
        "Hangup",
        "Reject",
        "Record",
        "Enqueue",
        "Leave",
        "Connect",
        "Refer",
        "Start",
        "Stop",
        "Sms",
        "Echo",
    }
)
APP_ERROR = "Twilio would say 'an application error has occurred'"


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` for a POST of ``params`` to ``url`` (a GET signs the URL)."""
    return compute_signature(url, params, auth_token)


def new_call_sid() -> str:
    """A CallSid shaped like Twilio's: ``CA`` and 32 hex digits."""
    return "CA" + secrets.token_hex(16)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def voice_url_for(url: str) -> str:
    """The number's Voice URL: ``url`` itself, or ``{url}/twilio/voice`` when it names no path."""
    parts = urlsplit(url)
    if parts.path in {"", "/"} and not parts.query:
        return origin(url) + "/twilio/voice"
    return url


@dataclass
class Reply:
    """A server's answer: its recorded step and, for good TwiML, the parsed document."""

    step: Step
    root: ET.Element | None


class Session:
    """One call's identity and HTTP client: signs every request over the public URL."""

    def __init__(
        self,
        *,
        voice_url: str,
        account_sid: str,
        auth_token: str,
        from_: str,
        to: str,
        via: Sequence[str] = (),
        timeout_s: float = RESPONSE_TIMEOUT_S,
        call_sid: str | None = None,
        direction: str = "inbound",
        answered_by: str | None = None,
    ) -> None:
        self.voice_url = voice_url
        self.public_origin = origin(voice_url)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_ = from_
        self.to = to
        self.via = [origin(v) for v in via]
        self.timeout_s = timeout_s
        self.call_sid = call_sid or new_call_sid()
        self.direction = direction  # "outbound-api" for a call the app asked Twilio to place
        self.answered_by = answered_by  # set when the app asked for answering machine detection
        self.call_status = "ringing"
        self.steps: list[Step] = []
        self.http = requests.Session()
        self._turn = 0

    def base_params(self) -> dict[str, str]:
        """The parameters Twilio puts on every voice request."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": self.call_status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        } | ({"AnsweredBy": self.answered_by} if self.answered_by else {})

    def route(self, url: str) -> str:
        """Where a request for public ``url`` goes: the next ``--via`` origin, round robin."""
        if not self.via or origin(url) != self.public_origin:
            return url
        target = self.via[self._turn % len(self.via)]
        self._turn += 1
        parts = urlsplit(url)
        return target + urlunsplit(("", "", parts.path or "/", parts.query, ""))

    def request(
        self,
        purpose: str,
        url: str,
        method: str = "POST",
        extra: Mapping[str, str] | None = None,
        *,
        twiml: bool = True,
    ) -> Reply:
        """Make one signed request as Twilio and check the answer as Twilio would."""
        params = {**self.base_params(), **(extra or {})}
        method = "GET" if method.strip().upper() == "GET" else "POST"
        signed_url = url
        if method == "GET":
            signed_url = url + ("&" if "?" in url else "?") + urlencode(params)
        target = self.route(signed_url)
        headers = {
            "X-Twilio-Signature": sign(
                signed_url, params if method == "POST" else {}, self.auth_token
            ),
            "User-Agent": "TwilioProxy/1.1",
        }
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        step = Step(len(self.steps) + 1, purpose, method, url, target, redact(params))
        self.steps.append(step)
        self.call_status = "in-progress" if self.call_status == "ringing" else self.call_status
        started = time.perf_counter()
        try:
            response = self.http.request(
                method,
                target,
                data=params if method == "POST" else None,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_S, self.timeout_s),
                allow_redirects=False,
                stream=True,
            )
            body = _read_capped(response)
        except requests.Timeout:
            step.ms = round((time.perf_counter() - started) * 1000)
            return self._fail(
                step,
                f"the server did not answer within {self.timeout_s:g} s",
                " (error 11205)",
                twiml,
            )
        except requests.RequestException as exc:
            step.ms = round((time.perf_counter() - started) * 1000)
            return self._fail(
                step,
                f"nothing answered at {target}",
                f" ({type(exc).__name__}; error 11205)",
                twiml,
            )
        step.ms = round((time.perf_counter() - started) * 1000)
        step.status = response.status_code
        step.content_type = response.headers.get("Content-Type", "")
        if not twiml:
            if not 200 <= response.status_code < 300:
                return self._fail(step, f"the server answered {response.status_code}", "", twiml)
            return Reply(step, None)
        return self._check_twiml(step, body)

    def _check_twiml(self, step: Step, body: bytes) -> Reply:
        """Apply Twilio's checks to a TwiML answer, in the order Twilio meets them."""
        if step.status != 200:
            return self._fail(step, f"the server answered {step.status}", "", True)
        if step.ms > self.timeout_s * 1000:
            return self._fail(
                step, f"the server took {step.ms} ms to answer", " (over 15 s; error 11205)", True
            )
        if len(body) > MAX_TWIML_BYTES:
            return self._fail(
                step,
                f"the server answered more than {MAX_TWIML_BYTES} bytes",
                " (error 11750)",
                True,
            )
        mime = step.content_type.split(";")[0].strip().lower()
        if mime not in TWIML_TYPES:
            shown = mime or "no Content-Type"
            return self._fail(
                step,
                f"the server answered {shown}",
                " (Twilio needs text/xml or application/xml; error 12300)",
                True,
            )
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            return self._fail(
                step,
                "the server answered a document that is not well-formed XML",
                f" ({exc}; error 12100)",
                True,
            )
        if root.tag != "Response":
            return self._fail(
                step,
                f"the server answered <{root.tag}> instead of <Response>",
                " (error 12100)",
                True,
            )
        unknown = [child.tag for child in root if child.tag not in VOICE_VERBS]
        if unknown:
            return self._fail(
                step,
                f"the server answered TwiML with an unknown verb <{unknown[0]}>",
                " (error 12200)",
                True,
            )
        return Reply(step, root)

    def _fail(self, step: Step, what: str, why: str, twiml: bool) -> Reply:
        """Record an application error in Twilio's words."""
        if twiml:
            consequence = APP_ERROR
        else:
            consequence = "Twilio would log error 11200 (the call itself is not affected)"
        step.problem = f"{what} to the {step.purpose} of step {step.n}{why}: {consequence}"
        return Reply(step, None)


def _read_capped(response: requests.Response) -> bytes:
    """The body, but never more than one byte past Twilio's limit."""
    chunks, size = [], 0
    for chunk in response.iter_content(8192):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_TWIML_BYTES:
            break
    response.close()
    return b"".join(chunks)
