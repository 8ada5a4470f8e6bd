"""``POST /stripe/webhook``: verify, deduplicate by event id, reconcile our payment records.

Each handler is idempotent on its own; the ``ProcessedEvent`` row, written in the same transaction,
makes a redelivered event a no-op.
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from payments import ChargeResult, InvalidWebhook

from ..extensions import db
from ..models import Account, Payment, ProcessedEvent
from . import ledger

logger = logging.getLogger(__name__)
bp = Blueprint("stripe", __name__)


def _payment_for(obj: Mapping[str, Any], intent_id: str | None) -> Payment | None:
    """Our payment for a Stripe object: by PaymentIntent id, else by the payment id we put in metadata."""
    if intent_id:
        found = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent == intent_id))
        if found is not None:
            return found
    payment_id = (obj.get("metadata") or {}).get("payment_id")
    if payment_id and str(payment_id).isdigit():
        return db.session.get(Payment, int(payment_id))
    return None


def _card(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    charge = obj.get("latest_charge")
    details = (charge.get("payment_method_details") or {}).get("card") if isinstance(charge, Mapping) else None
    details = details or (obj.get("payment_method_details") or {}).get("card") or {}
    return details.get("brand"), details.get("last4")


def intent_succeeded(obj: Mapping[str, Any]) -> None:
    """A charge went through at Stripe: settle it if we had not (e.g. our process died mid-call)."""
    payment = _payment_for(obj, obj.get("id"))
    if payment is None:
        logger.warning("payment_intent.succeeded %s matches no payment of ours", obj.get("id"))
        return
    if payment.amount_cents != obj.get("amount"):
        logger.error("payment %s: Stripe amount %s differs from ours %s", payment.id, obj.get("amount"), payment.amount_cents)
    brand, last4 = _card(obj)
    ledger.settle(payment, ChargeResult(True, obj.get("id"), card_brand=brand, card_last4=last4, status="succeeded"))


def intent_failed(obj: Mapping[str, Any]) -> None:
    """A PaymentIntent failed: record the decline if the call did not."""
    payment = _payment_for(obj, obj.get("id"))
    if payment is None:
        return
    error = obj.get("last_payment_error") or {}
    code = error.get("decline_code") or error.get("code") or "generic_decline"
    ledger.settle(payment, ChargeResult(False, obj.get("id"), decline_code=code, status=obj.get("status")))


def charge_refunded(obj: Mapping[str, Any]) -> None:
    """A refund: the refunded part is owed again and the posting file shows ``refunded`` when whole."""
    payment = _payment_for(obj, obj.get("payment_intent"))
    if payment is None or payment.status not in {"succeeded", "refunded", "disputed"}:
        return
    refunded = int(obj.get("amount_refunded") or 0)
    delta = refunded - payment.refunded_cents
    if delta <= 0:
        return
    payment.refunded_cents = refunded
    if refunded >= payment.amount_cents and payment.status == "succeeded":
        payment.status = "refunded"
    db.session.execute(
        sa.update(Account)
        .where(Account.id == payment.account_id)
        .values(balance_cents=Account.balance_cents + delta)
    )


def dispute_created(obj: Mapping[str, Any]) -> None:
    """A chargeback was opened: mark the payment disputed for the co-op's posting file."""
    payment = _payment_for(obj, obj.get("payment_intent"))
    if payment is not None and payment.status in {"succeeded", "refunded"}:
        payment.status = "disputed"


HANDLERS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
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
        handler(event.object)
    db.session.commit()
    return jsonify(received=True)
