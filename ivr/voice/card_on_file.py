"""The card on file during a call: the card the flow offered, and saving or forgetting it on the member's key.

The flow's ``Act`` steps name these; ``webhooks`` runs them under the call's row lock, once per key
press, and charges the card itself through its one charge path. Saving and forgetting go through
``money.saved_cards`` (the only code that keeps or drops a card); each commits.
"""

import logging

from flask import current_app

import flows
from flows import PayOutcome, State
from flows.steps import FORGOTTEN, NOT_SAVED, SAVED

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment
from ..money import saved_cards
from ..money.models import SavedCard
from .call_rows import CallRow
from .context import DbCallContext
from .spoken import say

logger = logging.getLogger(__name__)


def offered_card(call: CallRow) -> SavedCard | None:
    """The account's card on file if it is still the one the caller was offered (brand and last four)."""
    if call.account_id is None:
        return None
    card = saved_cards.saved_card_of(call.account_id)
    data = call.data or {}
    if card is None or (card.card_brand, card.card_last4) != (data.get("on_file_brand"), data.get("on_file_last4")):
        return None  # forgotten or replaced since it was offered: never charge a card not named
    return card


def consent_words(call: CallRow, ctx: DbCallContext) -> str:
    """The save offer exactly as the caller heard it, in the call's language."""
    lang = str((call.data or {}).get("language", call.language))
    org = current_app.config["ORG_NAME"]
    offer = flows.repeat(State.SAVE_CARD_OFFER, ctx).say
    return " ".join(say(prompt, lang, org)[1] for prompt in offer)


def save(call: CallRow, ctx: DbCallContext) -> PayOutcome:
    """The member pressed the key to keep the card just approved: save it with the words they heard."""
    payment_id = (call.data or {}).get("payment_id")
    payment = db.session.get(Payment, int(payment_id)) if payment_id else None
    if payment is None or payment.account_id != call.account_id or not saved_cards.can_save(payment):
        logger.warning("call %s: the approved payment's card could not be saved", call.call_sid)
        return PayOutcome(NOT_SAVED)
    words = consent_words(call, ctx)
    saved_cards.save_from_payment(payment, channel=call.channel, words=words, call_sid=call.call_sid)
    return PayOutcome(SAVED)


def forget(call: CallRow, ctx: DbCallContext) -> PayOutcome:
    """The member pressed the key to forget the card on file: delete it, then detach it at Stripe."""
    account = db.session.get(Account, call.account_id) if call.account_id is not None else None
    if account is not None and saved_cards.forget(account, by="member"):
        logger.info("call %s: the member forgot the card on file of account %s", call.call_sid,
                    mask(account.account_number))
    return PayOutcome(FORGOTTEN)  # already gone counts: what the member asked for is true
