"""Refund a payment from our side (the operations console): one Stripe Refund per request, recorded once.

Each request is numbered per payment and committed before Stripe is called; the number makes the
idempotency key (``refund:<payment id>:<n>``), so a double click that sends the same number again
gets the first request's answer, never a second refund. Stripe's answer and its webhooks both end in
``record_refund``, keyed by the Stripe refund id, so whichever arrives second changes nothing.
Needs an app context (the gateway); commits.
"""

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from payments import PaymentUnavailable, RefundResult

from ..extensions import db
from ..masking import mask
from ..models import Payment, row_id
from . import movements
from .models import RefundRequest

logger = logging.getLogger(__name__)

REFUNDED = "refunded"  # Stripe refunded it (or had already, for this request number)
REFUSED = "refused"  # nothing was refunded: see ``reason``
PENDING = "pending"  # asked, answer not known (Stripe unreachable): ask again with the same number

# Money that moved and is not in dispute (Stripe refuses to refund a disputed charge); a wholly
# refunded payment is refused for having nothing left.
REFUNDABLE_STATUSES = ("succeeded", "refunded")


@dataclass(frozen=True)
class RefundOutcome:
    """What became of one refund request."""

    status: str  # REFUNDED, REFUSED or PENDING
    request_number: int | None
    amount_cents: int
    refund_id: str | None = None
    # REFUSED: not_refundable, nothing_left, not_positive, more_than_remains, request_number_taken,
    # or Stripe's code (amount_too_large, charge_already_refunded, charge_disputed, ...).
    reason: str | None = None


def remaining_cents(payment: Payment) -> int:
    """What may still be refunded: what was charged (a convenience fee included) less what was
    refunded and what is asked but not yet answered. The fee goes back last (``movements``)."""
    asked = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(RefundRequest.amount_cents), 0)).where(
            RefundRequest.payment_id == payment.id, RefundRequest.status == "pending"
        )
    )
    return payment.charged_cents - payment.refunded_cents - int(asked or 0)


def next_request_number(payment: Payment) -> int:
    """The number the next refund request of ``payment`` takes (a form carries it, so a resubmission reuses it)."""
    latest = db.session.scalar(sa.select(sa.func.max(RefundRequest.number)).where(RefundRequest.payment_id == payment.id))
    return (latest or 0) + 1


def refund(payment: Payment, amount_cents: int | None, staff_name: str, *, request_number: int | None = None) -> RefundOutcome:
    """Refund ``amount_cents`` of ``payment`` (None: all that remains), asked by ``staff_name``.

    ``request_number`` names the request (from ``next_request_number`` when the form was shown);
    the same staff member sending a number again gets that request's outcome, Stripe being asked
    again (same key, so Stripe answers as the first time) only if its answer was never received.
    A number another request already took is refused (``request_number_taken``): show the form again.
    """
    number = request_number or next_request_number(payment)
    existing = _request(payment.id, number)
    if existing is not None:
        if existing.requested_by != staff_name[:120] or amount_cents not in (None, existing.amount_cents):
            # Not a resubmission: someone else's request took this number since the form was shown.
            return RefundOutcome(REFUSED, number, existing.amount_cents, reason="request_number_taken")
        return _answer_of(existing)

    # Locked while the remaining amount is worked out and the request written (PostgreSQL), so two
    # staff members refunding the same payment at once cannot both take the last dollars.
    locked = db.session.scalar(
        sa.select(Payment).where(Payment.id == payment.id).with_for_update().execution_options(populate_existing=True)
    )
    assert locked is not None
    remaining = remaining_cents(locked)
    amount = remaining if amount_cents is None else amount_cents
    refusal = _refusal(locked, amount, remaining)
    if refusal is not None:
        db.session.rollback()
        logger.info("refund of payment %s by %s refused: %s", payment.id, staff_name, refusal)
        return RefundOutcome(REFUSED, None, amount, reason=refusal)

    request = RefundRequest(payment_id=locked.id, number=number, amount_cents=amount, requested_by=staff_name[:120])
    try:
        with db.session.begin_nested():
            db.session.add(request)
    except IntegrityError:
        # The same request number arrived twice at once: the other one asks Stripe; so may we, with its key.
        db.session.rollback()
        existing = _request(payment.id, number)
        assert existing is not None
        return _answer_of(existing)
    db.session.commit()  # the request is on record before any money moves
    logger.info("refund %s of payment %s (account %s) asked by %s: %s cents",
                number, locked.id, mask(locked.account.account_number), staff_name, amount)
    return _ask_stripe(request)


def record_refund(payment: Payment, refund: RefundResult) -> bool:
    """Record a Stripe refund once, by its id, whoever reports it first (our API answer or a webhook).

    Also completes the staff request it answers, if any. The caller commits. True when this call
    recorded the money.
    """
    added = movements.record_refund(payment, refund)
    if refund.money_moved:
        request = _request_answered_by(payment, refund)
        if request is not None and request.status != "succeeded":
            request.status = "succeeded"
            request.stripe_refund_id = refund.refund_id
    return added


def _refusal(payment: Payment, amount: int, remaining: int) -> str | None:
    if payment.status not in REFUNDABLE_STATUSES or not payment.stripe_payment_intent:
        return "not_refundable"
    if remaining <= 0:
        return "nothing_left"
    if amount <= 0:
        return "not_positive"
    if amount > remaining:
        return "more_than_remains"
    return None


def _request(payment_id: int, number: int) -> RefundRequest | None:
    return db.session.scalar(
        sa.select(RefundRequest).where(RefundRequest.payment_id == payment_id, RefundRequest.number == number)
    )


def _answer_of(request: RefundRequest) -> RefundOutcome:
    """A request seen before: its recorded answer, or Stripe asked again with the same key."""
    if request.status == "succeeded":
        return RefundOutcome(REFUNDED, request.number, request.amount_cents, request.stripe_refund_id)
    if request.status == "refused":
        return RefundOutcome(REFUSED, request.number, request.amount_cents, reason=request.failure_code)
    return _ask_stripe(request)


def _ask_stripe(request: RefundRequest) -> RefundOutcome:
    """Ask Stripe for the request's refund (its key makes a repeat harmless) and record the answer."""
    payment = db.session.get(Payment, request.payment_id)
    assert payment is not None and payment.stripe_payment_intent is not None
    request_id, number, amount, key = request.id, request.number, request.amount_cents, request.idempotency_key
    intent, payment_id = payment.stripe_payment_intent, payment.id
    # No transaction stays open while Stripe answers: its webhook may record this refund meanwhile.
    db.session.commit()
    try:
        result = current_app.extensions["ivr.gateway"].refund(
            payment_intent_id=intent,
            amount_cents=amount,
            idempotency_key=key,
            # The webhook finds the request by it, should our process die before Stripe's answer is recorded.
            metadata={"payment_id": str(payment_id), "refund_request_id": str(request_id)},
        )
    except PaymentUnavailable:
        logger.warning("refund %s of payment %s: Stripe unavailable, answer unknown", number, payment_id)
        return RefundOutcome(PENDING, number, amount)

    request = db.session.get(RefundRequest, request_id)
    payment = db.session.get(Payment, payment_id)
    assert request is not None and payment is not None
    if not result.money_moved:
        request.status = "refused"
        request.failure_code = (result.failure_code or result.status)[:64]
        db.session.commit()
        return RefundOutcome(REFUSED, number, amount, reason=request.failure_code)
    record_refund(payment, result)
    db.session.commit()
    return RefundOutcome(REFUNDED, number, result.amount_cents, result.refund_id)


def _request_answered_by(payment: Payment, refund: RefundResult) -> RefundRequest | None:
    """The staff request this refund answers: by its Stripe id, else by the request id in its metadata."""
    found = db.session.scalar(sa.select(RefundRequest).where(RefundRequest.stripe_refund_id == refund.refund_id))
    if found is not None:
        return found
    request_id = row_id(refund.metadata.get("refund_request_id"))
    if request_id is None:
        return None
    request = db.session.get(RefundRequest, request_id)
    return request if request is not None and request.payment_id == payment.id else None
