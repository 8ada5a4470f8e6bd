"""Cards on file: saved only with the member's consent, charged off-session through the one charge step.

A card is kept as Stripe's customer and PaymentMethod ids with brand and last four (contract:
"Saved cards, later payments, autopay"), one per account. Every channel that saves, charges or
forgets a card (the call, the agent console, ``/ops``, pay by text, scheduled payments, autopay)
goes through this module, so the consent record and the detaching at Stripe exist once. A card
tokenized only for one scheduled payment is let go here too (``release``).
"""

import logging
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from flask import current_app

from payments import PaymentUnavailable

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from .charge import ChargeOutcome, charge_token
from .models import SavedCard

logger = logging.getLogger(__name__)


class CannotSave(Exception):
    """The payment's card cannot be kept: not approved, or no Stripe customer to keep it on."""


def saved_card_of(account_id: int) -> SavedCard | None:
    """The account's card on file, or None."""
    return db.session.scalar(sa.select(SavedCard).where(SavedCard.account_id == account_id))


def can_save(payment: Payment) -> bool:
    """True when the approved payment's card can be kept (Stripe gave a customer and a PaymentMethod)."""
    return payment.status == "succeeded" and bool(payment.stripe_customer and payment.stripe_payment_method)


def save_from_payment(payment: Payment, *, channel: str, words: str, call_sid: str | None = None) -> SavedCard:
    """Keep the card of an approved payment on its account, recording the consent; replaces a saved one.

    ``words`` is what the member agreed to, as said or shown to them. Commits, then detaches the
    card it replaced at Stripe (never a Stripe call inside the transaction). Saving the same
    payment's card again changes nothing.

    :raises CannotSave: the payment was not approved or has no Stripe customer.
    """
    if not can_save(payment):
        raise CannotSave("only an approved payment with a Stripe customer can keep its card")
    assert payment.stripe_customer and payment.stripe_payment_method  # can_save checked both
    values = {
        "stripe_customer": payment.stripe_customer,
        "stripe_payment_method": payment.stripe_payment_method,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "saved_at": utcnow(),
        "consent_channel": channel,
        "consent_call_sid": call_sid,
        "consent_payment_id": payment.id,
        "consent_language": payment.language,
        "consent_words": words,
    }
    # Lock the account's row so two saves for one account (two calls at once) queue, not collide.
    db.session.execute(sa.select(Account.id).where(Account.id == payment.account_id).with_for_update())
    card = saved_card_of(payment.account_id)
    if card is not None and card.stripe_payment_method == payment.stripe_payment_method:
        return card
    replaced = card.stripe_payment_method if card is not None else None
    if card is None:
        card = SavedCard(account_id=payment.account_id, **values)
        db.session.add(card)
    else:
        for name, value in values.items():
            setattr(card, name, value)
    db.session.commit()
    logger.info("card saved for account %s (%s)", mask(payment.account.account_number), channel)
    if replaced:
        _detach(replaced)
    return card


def record_existing(account: Account, *, customer: str, payment_method: str, brand: str | None, last4: str | None,
                    channel: str, words: str, language: str = "en") -> SavedCard:
    """Keep a card already attached to its Stripe customer elsewhere, with the consent given there.

    For the demo's seeded card (and a card a co-op's portal saved, should one be brought over):
    no payment of ours precedes it. An account that has a card on file keeps that one. Commits.
    """
    card = saved_card_of(account.id)
    if card is not None:
        return card
    card = SavedCard(account_id=account.id, stripe_customer=customer, stripe_payment_method=payment_method,
                     card_brand=brand, card_last4=last4, saved_at=utcnow(), consent_channel=channel,
                     consent_language=language, consent_words=words)
    db.session.add(card)
    db.session.commit()
    logger.info("card on file recorded for account %s (%s)", mask(account.account_number), channel)
    return card


def forget(account: Account, *, by: str, before_commit: Callable[[SavedCard], None] | None = None) -> bool:
    """Delete the account's card on file and detach it at Stripe; False when none was saved.

    ``by`` says who asked (``member``, ``agent:<name>``, ``staff:<name>``) for the log;
    ``before_commit(card)`` writes the caller's own rows (a staff member's audit entry) in the
    deletion's commit. Commits the deletion first: the member's wish holds even if Stripe cannot
    be reached, and a PaymentMethod no row points at is never charged by us again.
    """
    # Lock the account's row so two removals at once (an agent and the member) delete it once.
    db.session.execute(sa.select(Account.id).where(Account.id == account.id).with_for_update())
    card = saved_card_of(account.id)
    if card is None:
        return False
    payment_method = card.stripe_payment_method
    if before_commit is not None:
        before_commit(card)
    db.session.delete(card)
    db.session.commit()
    _detach(payment_method)
    logger.info("card on file forgotten for account %s by %s", mask(account.account_number), by.split(":")[0])
    return True


def charge_saved(
    card: SavedCard,
    amount_cents: int,
    attempt_key: str,
    *,
    channel: str,
    language: str,
    caller: str | None = None,
    call_sid: str | None = None,
    fee_cents: int = 0,
    extra_metadata: Mapping[str, str] | None = None,
    before_commit: Callable[[Payment], None] | None = None,
) -> ChargeOutcome:
    """Charge the card on file off-session through the one charge step (same receipt and posting rules).

    ``fee_cents``: a convenience fee the member accepted, charged with the amount as on the keypad.
    A bank that wants the member to authenticate declines with ``authentication_required``;
    the caller offers the keypad instead.
    """
    return charge_token(
        card.account,
        amount_cents,
        attempt_key,
        card.stripe_payment_method,
        channel=channel,
        call_sid=call_sid,
        language=language,
        caller=caller,
        customer=card.stripe_customer,
        off_session=True,
        fee_cents=fee_cents,
        extra_metadata={"saved_card": "yes", **(extra_metadata or {})},
        before_commit=before_commit,
    )


def release(payment_method: str) -> bool:
    """Detach a card kept for one later payment (tokenized in the call that scheduled it, never saved)
    once that payment has ended; a card an account keeps on file is left alone.

    False when Stripe could not be reached: the caller keeps the id and tries again later.
    """
    kept = db.session.scalar(sa.select(SavedCard.id).where(SavedCard.stripe_payment_method == payment_method))
    if kept is not None:
        return True
    try:
        current_app.extensions["ivr.gateway"].detach(payment_method)
    except PaymentUnavailable:
        logger.warning("could not detach a card kept for a scheduled payment; will try again")
        return False
    return True


def _detach(payment_method: str) -> None:
    try:
        current_app.extensions["ivr.gateway"].detach(payment_method)
    except PaymentUnavailable:
        # The row is gone, so we never charge it again; Stripe keeps an unused PaymentMethod.
        logger.warning("could not detach a forgotten card at Stripe; it is no longer used")
