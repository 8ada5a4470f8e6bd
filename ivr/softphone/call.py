"""``place_call``: one simulated inbound call from ringing to the final status callback."""

import math
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from ivr.config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

from .caller import DEFAULT_CONFIDENCE, InteractiveCaller, ScriptedCaller, script
from .interpreter import CallEnded, Interpreter
from .session import RESPONSE_TIMEOUT_S, Session, origin, voice_url_for
from .transcript import CallResult, Printer

DEFAULT_URL = "http://127.0.0.1:5000"
DEFAULT_FROM = "+15555550123"
DEFAULT_TO = "+15005550006"  # the development TWILIO_FROM_NUMBER


def place_call(
    url: str = DEFAULT_URL,
    *,
    from_: str = DEFAULT_FROM,
    to: str | None = None,
    keys: str | None = None,
    cards: Sequence[str] = (),
    say: Sequence[str] = (),
    confidence: float = DEFAULT_CONFIDENCE,
    hangup_in_pay: bool = False,
    via: Sequence[str] = (),
    status_callback: str | None = None,
    auth_token: str | None = None,
    account_sid: str | None = None,
    dial_status: str = "completed",
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    speak: bool = False,
    timeout_s: float = RESPONSE_TIMEOUT_S,
) -> CallResult:
    """Call ``url`` as Twilio would; scripted when ``keys``, ``cards`` or ``hangup_in_pay`` is set.

    :param status_callback: defaults to ``{public origin}/twilio/voice/status``; ``""`` sends none.
    :raises ValueError: for a malformed ``keys`` script or card.
    """
    printer = Printer(out or sys.stdout, speak=speak)
    if keys is not None or cards or hangup_in_pay or say:
        caller = ScriptedCaller(script(keys, say, confidence) if say else script(keys or "", ()), cards, hangup_in_pay)
    else:
        caller = InteractiveCaller(stdin or sys.stdin, printer.stream, confidence)
    session = Session(
        voice_url=voice_url_for(url),
        account_sid=account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or DEV_ACCOUNT_SID,
        auth_token=auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN,
        from_=from_,
        to=to or os.environ.get("TWILIO_FROM_NUMBER") or DEFAULT_TO,
        via=via,
        timeout_s=timeout_s,
    )
    printer.line(
        f"calling {session.to} from {session.from_} ({session.call_sid}): {session.voice_url}"
    )
    interpreter = Interpreter(session, caller, printer, dial_status=dial_status)
    started = time.monotonic()
    try:
        ended = interpreter.run()
    except KeyboardInterrupt:
        printer.line("  > caller hangs up (Ctrl-C)")
        ended = CallEnded("caller-hung-up")
    answered = ended.call_status == "completed"
    duration = math.ceil(time.monotonic() - started + interpreter.waited_s) if answered else 0
    session.call_status = ended.call_status
    if status_callback is None:
        status_callback = origin(session.voice_url) + "/twilio/voice/status"
    if status_callback:
        params = {
            "CallDuration": str(duration),
            "Timestamp": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        reply = session.request("status callback", status_callback, "POST", params, twiml=False)
        printer.step(reply.step)
    result = CallResult(
        call_sid=session.call_sid,
        from_=session.from_,
        to=session.to,
        voice_url=session.voice_url,
        steps=session.steps,
        end_reason=ended.reason,
        duration_s=duration,
        call_problems=interpreter.problems,
    )
    printer.summary(result)
    return result
