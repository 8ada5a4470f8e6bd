"""``POST /stripe/webhook``: verify, deduplicate by event id, reconcile our payment records.

Each handler is idempotent on its own (refunds and disputes through the money-movements ledger,
keyed by Stripe's ids); the ``ProcessedEvent`` row, written in the same transaction, makes a
redelivered event a no-op.
"""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from payments import ChargeResult, GatewayEvent, InvalidWebhook, PaymentUnavailable, RefundResult
from payments.gateway import from_unix, object_id

from ..extensions import db
from ..models import Payment, ProcessedEvent, row_id
from . import ledger, movements, refunds
from .models import MoneyMovement

# Payments whose money moved; refunds and disputes apply only to these.
POSTED_STATUSES = ("succeeded", "refunded", "disputed")

logger = logging.getLogger(__name__)
bp = Blueprint("stripe", __name__)


def _payment_for(obj: Mapping[str, Any], intent_id: str | None) -> Payment | None:
    """Our payment for a Stripe object: by PaymentIntent id, else by the payment id we put in metadata."""
    if intent_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent == intent_id))
        if found is not None:
            return found
    payment_id = row_id((obj.get("metadata") or {}).get("payment_id"))
    return db.session.get(Payment, payment_id) if payment_id is not None else None


def _card(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    charge = obj.get("latest_charge")
    details = (charge.get("payment_method_details") or {}).get("card") if isinstance(charge, Mapping) else None
    details = details or (obj.get("payment_method_details") or {}).get("card") or {}
    return details.get("brand"), details.get("last4")


def intent_succeeded(event: GatewayEvent) -> None:
    """A charge went through at Stripe: settle it if we had not (e.g. our process died mid-call)."""
    obj = event.object
    payment = _payment_for(obj, obj.get("id"))
    if payment is None:
        logger.warning("payment_intent.succeeded %s matches no payment of ours", obj.get("id"))
        return
    if payment.charged_cents != obj.get("amount"):
        logger.error("payment %s: Stripe amount %s differs from ours %s", payment.id, obj.get("amount"), payment.charged_cents)
    brand, last4 = _card(obj)
    ledger.settle(payment, ChargeResult(True, obj.get("id"), card_brand=brand, card_last4=last4, status="succeeded"))


def intent_failed(event: GatewayEvent) -> None:
    """A PaymentIntent failed: record the decline if the call did not."""
    obj = event.object
    payment = _payment_for(obj, obj.get("id"))
    if payment is None:
        return
    error = obj.get("last_payment_error") or {}
    code = error.get("decline_code") or error.get("code") or "generic_decline"
    ledger.settle(payment, ChargeResult(False, obj.get("id"), decline_code=code, status=obj.get("status")))


def _settled_payment_for(obj: Mapping[str, Any]) -> Payment | None:
    """Our payment behind a charge, refund or dispute, if it is one whose money moved."""
    payment = _payment_for(obj, object_id(obj.get("payment_intent")))
    if payment is None:
        logger.info("Stripe %s %s matches no payment of ours", obj.get("object"), obj.get("id"))
        return None
    return payment if payment.status in POSTED_STATUSES else None


def charge_refunded(event: GatewayEvent) -> None:
    """A charge was refunded, in part or whole: record each of its refunds once, by Stripe's refund id.

    Since API version 2022-11-15 a charge no longer lists its refunds, so when it says more was
    refunded than we have recorded, the refunds are asked of Stripe (one request, only then).
    """
    obj = event.object
    payment = _settled_payment_for(obj)
    if payment is None:
        return
    listed = (obj.get("refunds") or {}).get("data") or []
    for refund in listed:
        refunds.record_refund(payment, RefundResult.from_stripe(refund))
    if int(obj.get("amount_refunded") or 0) <= payment.refunded_cents or not payment.stripe_payment_intent:
        return
    try:
        found = current_app.extensions["ivr.gateway"].refunds_of(payment.stripe_payment_intent)
    except PaymentUnavailable:
        # refund.created brings the same refund with its id; the charge alone cannot say which it was.
        logger.warning("refunds of payment %s not listed (Stripe unavailable); waiting for refund.created", payment.id)
        return
    for refund in found:
        refunds.record_refund(payment, refund)


def refund_changed(event: GatewayEvent) -> None:
    """A Refund was created or changed (``refund.*``, ``charge.refund.updated``): record it once if it moved money."""
    refund = RefundResult.from_stripe(event.object)
    payment = _settled_payment_for(event.object)
    if payment is None:
        return
    refunds.record_refund(payment, refund)
    if refund.status in {"failed", "canceled"}:
        posted = db.session.scalar(sa.select(MoneyMovement.id).where(MoneyMovement.entry_id == f"re_{refund.refund_id}"))
        if posted is not None:
            # Stripe gave the money back to the co-op; the posting file has no type for that yet.
            logger.error("refund %s of payment %s %s after it was posted: correct the billing system by hand",
                         refund.refund_id, payment.id, refund.status)


def _withdrawal(dispute: Mapping[str, Any], sign: int) -> tuple[int | None, datetime | None]:
    """Amount and time of the dispute's balance transaction of that sign (−1 withdrawn, +1 reinstated), if listed."""
    for txn in dispute.get("balance_transactions") or []:
        if isinstance(txn, Mapping) and isinstance(txn.get("amount"), int) and txn["amount"] * sign > 0:
            return abs(txn["amount"]), from_unix(txn.get("created"))
    return None, None


def dispute_opened(event: GatewayEvent) -> None:
    """A dispute was opened or took the money: mark the payment disputed and record the withdrawal once.

    An inquiry (``warning_…``) takes no money; should it become a chargeback, Stripe withdraws the
    funds then and sends ``charge.dispute.funds_withdrawn``, which records it.
    """
    obj = event.object
    payment = _settled_payment_for(obj)
    if payment is None:
        return
    if payment.status in {"succeeded", "refunded"}:
        payment.status = "disputed"
    if str(obj.get("status") or "").startswith("warning_"):
        return
    amount, when = _withdrawal(obj, -1)
    movements.record_dispute(
        payment,
        str(obj.get("id")),
        amount if amount is not None else int(obj.get("amount") or 0),
        when or from_unix(obj.get("created")) or event.created_at,
    )


def dispute_closed(event: GatewayEvent) -> None:
    """A dispute ended: won gives the money back (once); lost keeps it gone; a closed inquiry took nothing."""
    obj = event.object
    payment = _settled_payment_for(obj)
    if payment is None:
        return
    status = obj.get("status")
    if status == "won":
        amount, when = _withdrawal(obj, +1)
        movements.record_dispute_won(payment, str(obj.get("id")), amount, when or event.created_at)
    if status in {"won", "warning_closed"} and payment.status == "disputed":
        payment.status = "refunded" if payment.refunded_cents >= payment.amount_cents else "succeeded"


HANDLERS: Mapping[str, Callable[[GatewayEvent], None]] = {
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "refund.created": refund_changed,
    "refund.updated": refund_changed,
    "refund.failed": refund_changed,
    "charge.refund.updated": refund_changed,
    "charge.dispute.created": dispute_opened,
    "charge.dispute.funds_withdrawn": dispute_opened,
    "charge.dispute.closed": dispute_closed,
}


@bp.post("/stripe/webhook")
def stripe_webhook():
    """Verify the ``Stripe-Signature`` (400 if bad), then apply the event once."""
    gateway = current_app.extensions["ivr.gateway"]
    try:
        event = gateway.parse_event(request.get_data(), request.headers.get("Stripe-Signature", ""))
    except InvalidWebhook:
        logger.warning("rejected Stripe webhook with a bad signature")
        return jsonify(error="invalid_signature"), 400
    handler = HANDLERS.get(event.type)
    try:
        with db.session.begin_nested():
            db.session.add(ProcessedEvent(event_id=event.id, type=event.type))
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, duplicate=True)
    if handler is None:
        logger.info("Stripe event %s of type %s ignored", event.id, event.type)
    else:
        handler(event)
    db.session.commit()
    return jsonify(received=True)
