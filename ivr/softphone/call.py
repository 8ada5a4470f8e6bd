"""``place_call``: one simulated inbound call from ringing to the final status callback."""

import math
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from ivr.config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

from . import network
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
    twilio_api: str | None = None,
    answer: bool = False,
    agent_wait_s: float = 120.0,
    agent_line: bool = False,
) -> CallResult:
    """Call ``url`` as Twilio would; scripted when ``keys``, ``cards`` or ``hangup_in_pay`` is set.

    :param status_callback: defaults to ``{public origin}/twilio/voice/status``; ``""`` sends none.
    :param twilio_api: the Twilio stand-in's address: the call is live there, so an agent's
        console can redirect it or run a Payments session on it.
    :param answer: answer the call the app asked the stand-in to place (Call me now) instead of
        calling in; needs ``twilio_api``.
    :param agent_line: the call goes to an agent, not to the IVR, until the agent's console moves
        it (a transfer); needs ``twilio_api``.
    :raises ValueError: for a malformed ``keys`` script or card, or ``answer`` with no call ringing.
    """
    printer = Printer(out or sys.stdout, speak=speak)
    if keys is not None or cards or hangup_in_pay or say:
        caller = ScriptedCaller(script(keys, say, confidence) if say else script(keys or "", ()), cards, hangup_in_pay)
    else:
        caller = InteractiveCaller(stdin or sys.stdin, printer.stream, confidence)
    identity = {
        "account_sid": account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or DEV_ACCOUNT_SID,
        "auth_token": auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN,
        "via": via,
        "timeout_s": timeout_s,
    }
    if (answer or agent_line) and not twilio_api:
        raise ValueError("--answer and --agent need the Twilio stand-in's address (--twilio-api)")
    if answer:
        if not twilio_api:
            raise ValueError("answering a call needs the Twilio stand-in's address (--twilio-api)")
        placed = network.answer(twilio_api)
        if placed is None:
            raise ValueError("no call is ringing: the app has not asked the Twilio stand-in to place one")
        # Twilio asks the Url it was given, as the call it placed, from our number to the member.
        session = Session(voice_url=placed["Url"], from_=placed.get("From", ""), to=placed.get("To", ""),
                          call_sid=placed["sid"], direction="outbound-api",
                          answered_by="human" if placed.get("MachineDetection") else None, **identity)
        if status_callback is None:
            status_callback = placed.get("StatusCallback", "")
    else:
        session = Session(
            voice_url=voice_url_for(url),
            from_=from_,
            to=to or os.environ.get("TWILIO_FROM_NUMBER") or DEFAULT_TO,
            **identity,
        )
    link = network.Network(twilio_api, session) if twilio_api else None
    if link is not None and not answer:
        link.started()
    printer.line(
        f"calling {session.to} from {session.from_} ({session.call_sid}): {session.voice_url}"
    )
    interpreter = Interpreter(session, caller, printer, dial_status=dial_status, network=link,
                              agent_wait_s=agent_wait_s)
    started = time.monotonic()
    try:
        ended = interpreter.run(agent_first=agent_line)
    except KeyboardInterrupt:
        printer.line("  > caller hangs up (Ctrl-C)")
        ended = CallEnded("caller-hung-up")
    answered = ended.call_status == "completed"
    duration = math.ceil(time.monotonic() - started + interpreter.waited_s) if answered else 0
    session.call_status = ended.call_status
    if link is not None:
        link.ended(ended.call_status)
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
