"""Outgoing SMS: the SmsSender interface, the Twilio sender and the sandbox sender (`ivr demo`)."""

import sys
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

from ..masking import mask
from ..twilio.adapter import SentMessage, TwilioApiError, TwilioRest
from ..twilio.client import rest_from_config

__all__ = [
    "SandboxSmsSender",
    "SentMessage",
    "SmsSender",
    "TwilioApiError",
    "TwilioSmsSender",
    "build_sms_sender",
]


# Twilio's clock and ours may differ a little: a message created this long before the row counts.
CLOCK_SLACK = timedelta(minutes=2)


class SmsSender(Protocol):
    """Anything that can send one text; raises TwilioApiError when the provider refuses."""

    def send(self, to: str, body: str) -> SentMessage: ...

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """The sid of a text with this body the provider accepted for ``to`` since ``since``, or None.

        :raises TwilioApiError: the provider could not be asked.
        """
        ...


class TwilioSmsSender:
    """Send texts through Twilio's Messages API."""

    def __init__(self, rest: TwilioRest) -> None:
        self.rest = rest

    def send(self, to: str, body: str) -> SentMessage:
        """Create one Message; raise TwilioApiError on refusal."""
        return self.rest.send_sms(to, body)

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """Ask Twilio's Messages list for our text to ``to``: same body, created since ``since``."""
        for message in self.rest.messages_to(to):
            created = message.date_created
            if message.body == body and created is not None and created >= since - CLOCK_SLACK:
                return message.sid
        return None


class SandboxSmsSender:
    """Print each text instead of sending it (local runs and `ivr demo`); never in production."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Resolved at send time so a redirected sys.stdout (tests, the demo runner) is honoured.
        self._stream = stream
        self._lock = threading.Lock()
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, body: str) -> SentMessage:
        """Print the text with the recipient masked and return a made-up ``SM…`` sid."""
        sid = "SM" + uuid.uuid4().hex
        stream = self._stream or sys.stdout
        with self._lock:
            print(f"[sms to {mask(to)}] {body}", file=stream, flush=True)
            self.sent.append((to, body, sid))
        return SentMessage(sid=sid, status="queued")

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """A text this process printed (a stopped demo worker's texts are gone with it: sent again)."""
        with self._lock:
            return next((sid for sent_to, sent_body, sid in self.sent if (sent_to, sent_body) == (to, body)), None)


def build_sms_sender(config: Mapping[str, Any]) -> SmsSender:
    """Return the sender named by ``config["SMS_SENDER"]`` ('twilio' or 'sandbox')."""
    choice = (config.get("SMS_SENDER") or "").strip().lower()
    if choice == "twilio":
        return TwilioSmsSender(rest_from_config(config))
    if choice == "sandbox":
        return SandboxSmsSender()
    raise ValueError(f"SMS_SENDER must be 'twilio' or 'sandbox', not {choice!r}")
