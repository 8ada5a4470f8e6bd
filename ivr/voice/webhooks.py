"""Twilio voice webhooks: parse the request, lock the call, ask the engine, answer TwiML.

Menu logic lives in ``flows``; this module only moves data between Twilio, the database and the
engine, and charges the ``<Pay>`` token.
"""

import logging
import time

from flask import Blueprint, current_app, request

import flows
from flows import KeyPress, PayOutcome, Silence, State
from flows.steps import APPROVED, CALLER_HUNG_UP, DECLINED, STAR, UNAVAILABLE, UNREADABLE

from ..extensions import db
from ..masking import mask
from ..models import Account, utcnow
from ..money import ledger
from ..monitoring import metrics
from ..twilio.signatures import twilio_signed
from . import call_rows as calls
from . import events as call_events
from .call_rows import CallRow
from .twiml import apology, render_turn, xml_response

logger = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

# Pay results that mean "no usable card": the caller may try again.
_PAY_RESULT_LABELS = {
    "caller-interrupted-with-star": STAR,
    "caller-hung-up": CALLER_HUNG_UP,
    "too-many-failed-attempts": UNREADABLE,
}


def answer(call: CallRow, turn: flows.Turn, ctx: calls.DbCallContext) -> str:
    """Render ``turn`` for ``call``, save it as the call's last answer, and return the TwiML.

    Raises ``calls.CallMoved`` when the row was written since ``call`` was read (only possible
    for a row read without its lock).
    """
    data = {**(call.data or {}), **turn.updates}
    lang = str(data.get("language", call.language))
    account = ctx.account()
    description = f"Account ending {account.last4}" if account else ""
    twiml = render_turn(turn, lang, call.seq + 1, return_to=data.get("return_to"), description=description)
    calls.apply(call, turn, twiml)
    call_events.emit("turn", call, turn=turn)
    if not calls.save(call):
        raise calls.CallMoved(call.call_sid)
    return twiml


def start_call(call: CallRow, entry: flows.Entry) -> str:
    """The first answer of a call entering the flow by ``entry`` (self-service, transfer or callback)."""
    ctx = calls.DbCallContext(call)
    twiml = answer(call, flows.start(entry, ctx), ctx)
    metrics.call_started(entry)  # after the answer: a delivery that lost the race to greet counts nothing
    return twiml


def _saved_answer(call: CallRow | None) -> str:
    """The answer the call's row holds: what another delivery of the same request said."""
    return call.last_twiml if call is not None and call.last_twiml else apology()


# A menu step saved without a lock retries when another webhook wrote the call's row meanwhile
# (a status callback, say); after this many it waits for the lock instead.
OPTIMISTIC_TRIES = 3


def _read_for_step(call_sid: str, attempt: int) -> CallRow | None:
    """The call's row for a menu step: read without a lock, unless it must be locked.

    Calls an agent or a callback brought in take the lock: their webhooks lock transfer and
    callback rows after the call's, and the step's listeners lock those rows too.
    """
    call = calls.read(call_sid) if attempt < OPTIMISTIC_TRIES else None
    if call is None or call.channel != "ivr":
        call = calls.lock(call_sid)
    return call


@bp.post("/twilio/voice")
@twilio_signed
def incoming_call():
    """A call comes in: greet the caller (or repeat the greeting if Twilio asks twice)."""
    form = request.form
    call_sid = form.get("CallSid", "")
    call = calls.read(call_sid)
    if call is not None and call.last_twiml:
        return xml_response(call.last_twiml)
    if call is None:
        call = calls.new(call_sid, from_number=form.get("From"), to_number=form.get("To"), state=flows.INITIAL)
    logger.info("call %s from %s", call_sid, mask(form.get("From")))
    try:
        twiml = start_call(call, flows.Entry.SELF_SERVICE)
    except calls.CallMoved:  # the same call arriving twice at once: the other delivery greeted it
        db.session.rollback()
        return xml_response(_saved_answer(calls.read(call_sid)))
    calls.commit()
    return xml_response(twiml)


def _replay_or_none(call: CallRow | None) -> str | None:
    """The saved answer when this request is one Twilio already had answered (or the call is unknown)."""
    if call is None:
        return apology()
    try:
        seq = int(request.args.get("seq", ""))
    except ValueError:
        return call.last_twiml or apology(call.language)
    if seq != call.seq:
        logger.info("call %s: replayed request seq=%s (now %s)", call.call_sid, seq, call.seq)
        return call.last_twiml or apology(call.language)
    return None


@bp.post("/twilio/voice/step")
@twilio_signed
def step():
    """A ``<Gather>`` answered (``Digits``) or timed out (no ``Digits``): advance the flow."""
    call_sid = request.form.get("CallSid", "")
    event = KeyPress(request.form["Digits"]) if request.form.get("Digits") else Silence()
    for attempt in range(OPTIMISTIC_TRIES + 1):
        call = _read_for_step(call_sid, attempt)
        replay = _replay_or_none(call)
        if replay is not None:
            calls.commit()
            return xml_response(replay)
        assert call is not None
        ctx = calls.DbCallContext(call)
        turn = flows.advance(State(call.state), event, ctx)
        try:
            twiml = answer(call, turn, ctx)
        except calls.CallMoved:  # decide again on the row as it is now (nothing was kept)
            db.session.rollback()
            continue
        calls.commit()
        return xml_response(twiml)
    raise AssertionError("a locked call row cannot move")


@bp.post("/twilio/voice/pay")
@twilio_signed
def pay_result():
    """``<Pay>`` finished: charge the token once, then tell the caller how it went."""
    form = request.form
    call_sid = form.get("CallSid", "")
    call = calls.lock(call_sid)
    replay = _replay_or_none(call)
    if replay is not None:
        db.session.commit()
        return xml_response(replay)
    assert call is not None
    seq = call.seq
    result = form.get("Result", "")
    token = form.get("PaymentToken", "")
    if result == "success" and token:
        if _charge_in_flight(call, seq):
            call = _wait_for_other_delivery(call_sid, seq)
            if call is None or call.seq != seq:
                db.session.commit()
                return xml_response(_saved_answer(call))
        outcome = _charge(call, token, form)
        call = calls.lock(call_sid)  # re-taken: the charge ran without holding the row
        if call is None or call.seq != seq:
            db.session.commit()
            return xml_response(_saved_answer(call))
    else:
        label = _PAY_RESULT_LABELS.get(result, UNAVAILABLE)
        if label == UNAVAILABLE:
            logger.warning("call %s: <Pay> ended with %s (%s)", call_sid, result or "no result", form.get("PayErrorCode", ""))
        outcome = PayOutcome(label, {"pay_field": None})
    ctx = calls.DbCallContext(call)
    turn = flows.advance(State(call.state), outcome, ctx)
    twiml = answer(call, turn, ctx)
    db.session.commit()
    return xml_response(twiml)


CHARGE_WAIT_SECONDS = 10.0


def _charge_in_flight(call: CallRow, seq: int) -> bool:
    """Another delivery of this same <Pay> result is charging right now."""
    return (call.data or {}).get("charging_seq") == seq


def _wait_for_other_delivery(call_sid: str, seq: int) -> CallRow | None:
    """Let the first delivery finish and reuse its answer; after a while assume it died and go on.

    Going on is safe: the attempt key is the same, so Stripe answers with the same charge.
    """
    deadline = time.monotonic() + CHARGE_WAIT_SECONDS
    call = None
    while time.monotonic() < deadline:
        db.session.commit()
        time.sleep(0.1)
        call = calls.lock(call_sid)
        if call is None or call.seq != seq:
            return call
    return call


def _charge(call: CallRow, token: str, form) -> PayOutcome:
    """Open the attempt, commit it, charge outside any lock, and settle it. Returns the flow outcome."""
    data = dict(call.data or {})
    account = db.session.get(Account, call.account_id) if call.account_id else None
    amount = int(data.get("amount_cents", 0))
    if account is None or amount <= 0:
        logger.error("call %s reached <Pay> without an account or amount", call.call_sid)
        return PayOutcome(UNAVAILABLE)
    attempts = int(data.get("pay_attempts", 0)) + 1
    payment = ledger.open_attempt(
        # The seq names this one <Pay>: a redelivery has the same key, a new card a new one.
        attempt_key=f"{call.call_sid}:{call.seq}",
        account=account,
        amount_cents=amount,
        call_sid=call.call_sid,
        channel=call.channel,
        language=call.language,
        caller=call.from_number,
    )
    payment_id = payment.id
    metadata = {
        "payment_id": str(payment.id),
        "account_number": account.account_number,
        "call_sid": call.call_sid,
        "channel": call.channel,
    }
    description = f"{current_app.config['ORG_NAME']} account ending {account.last4}"
    call.data = {**data, "charging_seq": call.seq}
    calls.save(call)  # locked: cannot fail
    db.session.commit()  # the attempt is on record before any money moves

    payment = ledger.charge(
        payment_id, token=token, metadata=metadata, description=description,
        customer=form.get("ProfileId") or None,
    )
    if payment is None:
        logger.warning("call %s: payment processor unavailable", call.call_sid)
        return PayOutcome(UNAVAILABLE, {"pay_attempts": attempts})
    if payment.status == "succeeded":
        return PayOutcome(
            APPROVED,
            {
                "pay_attempts": attempts,
                "confirmation_number": payment.confirmation_number,
                "paid_cents": payment.amount_cents,
                "payment_id": payment.id,
            },
        )
    return PayOutcome(DECLINED, {"pay_attempts": attempts, "decline_code": payment.decline_code})


@bp.post("/twilio/voice/pay-status")
@twilio_signed
def pay_status():
    """``<Pay>`` progress: remember which field the caller is entering (agents see it)."""
    call = calls.lock(request.form.get("CallSid", ""))
    if call is not None:
        field = request.form.get("For")
        if field:
            call.data = {**(call.data or {}), "pay_field": field}
            call_events.emit("pay_field", call, field=field)
            calls.save(call)
    db.session.commit()
    return ("", 204)


@bp.post("/twilio/voice/status")
@twilio_signed
def call_status():
    """Call status callback: record the status and close the call's session when it has ended."""
    record_status(request.form.get("CallSid", ""), request.form)
    db.session.commit()
    return ("", 204)


def record_status(call_sid: str, form) -> None:
    """Keep Twilio's ``CallStatus`` on the call's row (locked) and tell the listeners."""
    call = calls.lock(call_sid)
    if call is None:
        return
    status = form.get("CallStatus", "")
    call.call_status = status
    if status in calls.ENDED_CALL_STATUSES and call.ended_at is None:
        call.ended_at = utcnow()
    call_events.emit("status", call, status=status, form=form)
    calls.save(call)
