"""Twilio voice webhooks: parse the request, lock the call, ask the engine, answer TwiML.

Menu logic lives in ``flows``; this module only moves data between Twilio, the database and the
engine, and charges the ``<Pay>`` token or the card on file.
"""

import logging
import time

from flask import Blueprint, current_app, request

import flows
from flows import Act, KeyPress, Pay, PayOutcome, Silence, Speech, State
from flows.steps import (
    APPROVED,
    CALLER_HUNG_UP,
    CHARGE_SAVED_CARD,
    DECLINED,
    FORGET_CARD,
    FORGOTTEN,
    SAVE_CARD,
    STAR,
    UNAVAILABLE,
    UNREADABLE,
)

from ..extensions import db
from ..later.desk import keep_card_for_later
from ..masking import mask
from ..models import Account, utcnow
from ..money import charge, saved_cards
from ..money.models import SavedCard
from ..monitoring import metrics
from ..twilio.signatures import call_sid as signed_call_sid
from ..twilio.signatures import twilio_signed
from . import call_rows, card_on_file
from . import events as call_events
from .call_rows import CallRow
from .context import DbCallContext
from .twiml import apology, render_turn, xml_response

logger = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

# Pay results that mean "no usable card": the caller may try again.
_PAY_RESULT_LABELS = {
    "caller-interrupted-with-star": STAR,
    "caller-hung-up": CALLER_HUNG_UP,
    "too-many-failed-attempts": UNREADABLE,
}


def answer(call: CallRow, turn: flows.Turn, ctx: DbCallContext) -> str | None:
    """Render ``turn`` for ``call``, save it as the call's last answer and commit; return the TwiML.

    None when the row was written since ``call`` was read (only possible for a row read without
    its lock): then nothing the request wrote was kept.
    """
    data = {**(call.data or {}), **turn.updates}
    lang = str(data.get("language", call.language))
    account = ctx.account()
    description = f"Account ending {account.last4}" if account else ""
    twiml = render_turn(turn, lang, call.seq + 1, return_to=data.get("return_to"), description=description)
    call_rows.apply(call, turn, twiml)
    call_events.emit("turn", call, turn=turn)
    return twiml if call_rows.commit_answer(call) else None


def start_call(call: CallRow, entry: flows.Entry) -> str | None:
    """The first answer of a call entering the flow by ``entry`` (self-service, transfer or callback),
    committed; None when another delivery of the same request answered first."""
    ctx = DbCallContext(call)
    twiml = answer(call, flows.start(entry, ctx), ctx)
    if twiml is not None:  # a delivery that lost the race to greet counts nothing
        metrics.call_started(entry)
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
    call = call_rows.read(call_sid) if attempt < OPTIMISTIC_TRIES else None
    if call is None or call.channel != "ivr":
        call = call_rows.lock(call_sid)
    return call


@bp.post("/twilio/voice")
@twilio_signed
def incoming_call():
    """A call comes in: greet the caller (or repeat the greeting if Twilio asks twice)."""
    form = request.form
    call_sid = signed_call_sid()
    call = call_rows.read(call_sid)
    if call is not None and call.last_twiml:
        return xml_response(call.last_twiml)
    if call is None:
        call = call_rows.new(call_sid, from_number=form.get("From"), to_number=form.get("To"), state=flows.INITIAL)
    logger.info("call %s from %s", call_sid, mask(form.get("From")))
    twiml = start_call(call, flows.Entry.SELF_SERVICE)
    if twiml is None:  # the same call arriving twice at once: the other delivery greeted it
        return xml_response(_saved_answer(call_rows.read(call_sid)))
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


def _gathered() -> KeyPress | Speech | Silence:
    """What the ``<Gather>`` got: keys (``Digits``), words (``SpeechResult`` with ``Confidence``) or nothing.

    The words are never logged or kept: a caller may say anything, a card number included.
    """
    form = request.form
    if form.get("Digits"):
        return KeyPress(form["Digits"])
    words = form.get("SpeechResult", "").strip()
    if not words:
        return Silence()
    try:
        confidence = float(form.get("Confidence", ""))
    except ValueError:
        confidence = 0.0  # no confidence given: read it back rather than act on it
    return Speech(words[:500], confident=confidence >= current_app.config["SPEECH_CONFIDENCE_THRESHOLD"])


@bp.post("/twilio/voice/step")
@twilio_signed
def step():
    """A ``<Gather>`` answered (``Digits``) or timed out (no ``Digits``): advance the flow."""
    call_sid = signed_call_sid()
    event = _gathered()
    for attempt in range(OPTIMISTIC_TRIES + 1):
        call = _read_for_step(call_sid, attempt)
        replay = _replay_or_none(call)
        if replay is not None:
            call_rows.release()
            return xml_response(replay)
        assert call is not None
        ctx = DbCallContext(call)
        turn = flows.advance(State(call.state), event, ctx)
        if isinstance(turn.expect, Act):  # the key moves money or a saved card: do it once, locked
            assert not isinstance(event, Silence)
            return xml_response(_act(call_sid, event))
        twiml = answer(call, turn, ctx)
        if twiml is None:  # decide again on the row as it is now (nothing was kept)
            continue
        return xml_response(twiml)
    raise AssertionError("a locked call row cannot move")


def _act(call_sid: str, event: KeyPress | Speech) -> str:
    """A key that asks the web layer to act (charge the card on file, save or forget it): once, as ``<Pay>``.

    The call's row is locked and the request's ``seq`` checked, as for a ``<Pay>`` result; the
    action commits (a charge commits its attempt before Stripe is called), the row is locked
    again, and the caller hears what the action came to. A redelivered key press gets the saved
    answer; one that reaches Stripe while the first is still there waits for its outcome.
    """
    call = call_rows.lock(call_sid)
    replay = _replay_or_none(call)
    if replay is not None:
        call_rows.release()
        return replay
    assert call is not None
    seq = call.seq
    ctx = DbCallContext(call)
    turn = flows.advance(State(call.state), event, ctx)
    if not isinstance(turn.expect, Act):  # the row moved on before the lock: answer like any step
        twiml = answer(call, turn, ctx)
        assert twiml is not None, "a locked call row cannot move"
        return twiml
    action = turn.expect.action
    outcome: PayOutcome | None
    if action == CHARGE_SAVED_CARD:
        card = card_on_file.offered_card(call)
        outcome = _charge_until_known(call, card=card) if card is not None else PayOutcome(FORGOTTEN)
    elif action == SAVE_CARD:
        outcome = card_on_file.save(call, ctx)
    elif action == FORGET_CARD:
        outcome = card_on_file.forget(call, ctx)
    else:
        raise AssertionError(f"no action {action!r}")
    call = call_rows.lock(call_sid)  # re-taken: the action committed
    if outcome is None or call is None or call.seq != seq:
        call_rows.release()  # another delivery of this key answered: say what it said
        return _saved_answer(call)
    ctx = DbCallContext(call)
    twiml = answer(call, flows.resume(turn, outcome, ctx), ctx)
    assert twiml is not None, "a locked call row cannot move"
    return twiml


@bp.post("/twilio/voice/pay")
@twilio_signed
def pay_result():
    """``<Pay>`` finished: charge the token once, then tell the caller how it went."""
    form = request.form
    call_sid = signed_call_sid()
    call = call_rows.lock(call_sid)
    replay = _replay_or_none(call)
    if replay is None and not _waiting_for_card(call):
        # Only a call waiting in a <Pay> has a card to charge. A result posted to any other step
        # (after the approval, say, with the confirmation's own seq) is no <Pay> we asked for.
        assert call is not None
        logger.warning("call %s: <Pay> result while at %s, not card entry: ignored", call_sid, call.state)
        replay = _saved_answer(call)
    if replay is not None:
        call_rows.release()
        return xml_response(replay)
    assert call is not None
    seq = call.seq
    result = form.get("Result", "")
    token = form.get("PaymentToken", "")
    if result == "success" and token and call.state == State.SCHEDULE_CARD:
        outcome = keep_card_for_later(call, token, form)  # nothing is charged now: the row lock suffices
    elif result == "success" and token:
        outcome = _charge_until_known(call, token, customer=form.get("ProfileId") or None)
        call = call_rows.lock(call_sid)  # re-taken: the charge ran without holding the row
        if outcome is None or call is None or call.seq != seq:
            call_rows.release()  # another delivery of this result answered: say what it said
            return xml_response(_saved_answer(call))
    else:
        label = _PAY_RESULT_LABELS.get(result, UNAVAILABLE)
        if label == UNAVAILABLE:
            logger.warning("call %s: <Pay> ended with %s (%s)", call_sid, result or "no result", form.get("PayErrorCode", ""))
        outcome = PayOutcome(label, {"pay_field": None})
    ctx = DbCallContext(call)
    twiml = answer(call, flows.advance(State(call.state), outcome, ctx), ctx)
    assert twiml is not None, "a locked call row cannot move"
    return xml_response(twiml)


def _waiting_for_card(call: CallRow | None) -> bool:
    """The call is at a step that expects a ``<Pay>`` result (card entry)."""
    return call is not None and call.state in State.__members__ and isinstance(flows.FLOW[State(call.state)].expect, Pay)


# A delivery of a <Pay> result asks Stripe at once, with the attempt's idempotency key, what became
# of the attempt: Stripe returns the first request's result, or charges if no request reached it.
# Only while Stripe says a request with that key is still running (another delivery's, live or
# from a process that has just died) does it wait, asking again every so often, for this long at
# most: well inside the 15 s Twilio waits for an answer (docs/architecture.md).
IN_PROGRESS_WAIT_SECONDS = 5.0
IN_PROGRESS_POLL_SECONDS = 0.5


def _charge_until_known(call: CallRow, token: str = "", *, customer: str | None = None,
                        card: SavedCard | None = None) -> PayOutcome | None:
    """Charge (the ``<Pay>`` token, or the card on file) through the one charge step until Stripe
    knows the outcome; commits, holds no lock.

    None when another delivery of this same result (or key press) answered the caller meanwhile.
    """
    deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
    seq = call.seq
    while True:
        outcome, in_progress = _charge(call, token, customer=customer, card=card)
        if not in_progress or time.monotonic() >= deadline:
            return outcome  # after the wait: "not charged, try again" (Stripe's webhook settles it)
        call_rows.release()  # no transaction left open while waiting
        time.sleep(IN_PROGRESS_POLL_SECONDS)
        locked = call_rows.lock(call.call_sid)
        if locked is None or locked.seq != seq:
            call_rows.release()
            return None
        call = locked


def _charge(call: CallRow, token: str, *, customer: str | None, card: SavedCard | None) -> tuple[PayOutcome, bool]:
    """Charge the ``<Pay>`` token (of Stripe's ``customer``) or the card on file through the one charge
    step; the flow outcome, and whether Stripe was still running another request of this same
    attempt (so the outcome is not known yet)."""
    data = dict(call.data or {})
    account = db.session.get(Account, call.account_id) if call.account_id else None
    amount = int(data.get("amount_cents") or 0)
    # A fee the caller accepted by a key (the flow's FEE_CONFIRM); none on an agent's transfer.
    fee = int(data.get("fee_cents") or 0)
    if account is None or amount <= 0:
        logger.error("call %s reached <Pay> without an account or amount", call.call_sid)
        return PayOutcome(UNAVAILABLE), False
    attempts = int(data.get("pay_attempts", 0)) + 1
    if card is None:
        charged = charge.charge_token(
            account,
            amount,
            # The seq names this one <Pay>: a redelivery has the same key, a new card a new one.
            f"{call.call_sid}:{call.seq}",
            token,
            channel=call.channel,
            call_sid=call.call_sid,
            language=call.language,
            caller=call.from_number,
            customer=customer,
            fee_cents=fee,
        )
    else:
        charged = saved_cards.charge_saved(
            card,
            amount,
            # The seq names the "1" that chose the card; "saved:" keeps it apart from a <Pay>'s key.
            f"saved:{call.call_sid}:{call.seq}",
            channel=call.channel,
            call_sid=call.call_sid,
            language=call.language,
            caller=call.from_number,
            fee_cents=fee,
        )
    if charged.status == charge.UNAVAILABLE:
        logger.warning("call %s: payment processor %s", call.call_sid,
                       "still running this attempt" if charged.in_progress else "unavailable")
        return PayOutcome(UNAVAILABLE, {"pay_attempts": attempts}), charged.in_progress
    payment = charged.payment
    assert payment is not None
    if charged.status == charge.APPROVED:
        return PayOutcome(
            APPROVED,
            {
                "pay_attempts": attempts,
                "confirmation_number": payment.confirmation_number,
                "paid_cents": payment.amount_cents,
                "paid_fee_cents": payment.fee_cents,
                "payment_id": payment.id,
                # A keyed card Stripe keeps on a customer may be saved, if the member agrees.
                "card_savable": card is None and _savable(payment),
            },
        ), False
    declined = {"pay_attempts": attempts, "decline_code": charged.decline_code}
    if card is not None:
        declined["saved_card_failed"] = True  # not offered again on this call
    return PayOutcome(DECLINED, declined), False


def _savable(payment) -> bool:
    """The keyed card can be kept, and is not the very card on file already (nothing to ask)."""
    if not saved_cards.can_save(payment):
        return False
    on_file = saved_cards.saved_card_of(payment.account_id)
    return on_file is None or on_file.stripe_payment_method != payment.stripe_payment_method


@bp.post("/twilio/voice/pay-status")
@twilio_signed
def pay_status():
    """``<Pay>`` progress: remember which field the caller is entering (agents see it)."""
    call = call_rows.lock(signed_call_sid())
    if call is not None:
        field = request.form.get("For")
        if field:
            call.data = {**(call.data or {}), "pay_field": field}
            call_events.emit("pay_field", call, field=field)
            call_rows.save(call)
    call_rows.release()
    return ("", 204)


@bp.post("/twilio/voice/status")
@twilio_signed
def call_status():
    """Call status callback: record the status and close the call's session when it has ended."""
    record_status(signed_call_sid(), request.form)
    call_rows.release()
    return ("", 204)


def record_status(call_sid: str, form) -> None:
    """Keep Twilio's ``CallStatus`` on the call's row (locked) and tell the listeners; the caller releases."""
    call = call_rows.lock(call_sid)
    if call is None:
        return
    status = form.get("CallStatus", "")
    call.call_status = status
    if status in call_rows.ENDED_CALL_STATUSES and call.ended_at is None:
        call.ended_at = utcnow()
    call_events.emit("status", call, status=status, form=form)
    call_rows.save(call)
