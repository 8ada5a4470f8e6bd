"""The member's texts about paying later: the autopay notice, a bill too late for autopay, a failed charge.

Queued in the outbox in the same transaction as the fact they tell of, once each (``dedupe_key``),
to the phone on file and held by quiet hours like reminders; ``ivr worker`` sends them. Receipts
are not here: the charge step queues them, as for every payment.
"""

import logging
from datetime import date, datetime

from flask import current_app
from sqlalchemy.exc import IntegrityError

import prompts
from prompts import amounts, dates

from ..extensions import db
from ..models import Account
from ..outbox.models import OutboxMessage
from ..phones import national
from ..reminders.pay_by_text import card_words

logger = logging.getLogger(__name__)

# Why a charge failed, as the text says it (a decline code not listed here: "declined").
_REASONS = {
    "authentication_required": "sms.reason_authentication",
    "no_card": "sms.reason_no_card",
    "unavailable": "sms.reason_unavailable",
}


def _queue(kind: str, dedupe_key: str, account: Account, lang: str, key: str, now: datetime,
           payment_id: int | None = None, **params: object) -> None:
    lang = prompts.language(lang)
    body = prompts.text(
        f"sms.{key}", lang, org=current_app.config["ORG_NAME"],
        pay_line=national(current_app.config["TWILIO_FROM_NUMBER"]), last4=account.last4, **params,
    )
    try:
        with db.session.begin_nested():
            db.session.add(OutboxMessage(
                dedupe_key=dedupe_key, kind=kind, to_number=account.phone, body=body, account_id=account.id,
                payment_id=payment_id, respect_quiet_hours=True, next_attempt_at=now, created_at=now,
            ))
    except IntegrityError:
        logger.info("%s already queued", dedupe_key)


def autopay_notice(bill_id: int, account: Account, *, lang: str, amount_cents: int, due: date,
                   brand: str | None, card_last4: str | None, now: datetime) -> None:
    """Two days before: the amount autopay will charge, the card, the day and how to stop it."""
    lang = prompts.language(lang)
    _queue("autopay_notice", f"autopay_notice:{bill_id}", account, lang, "autopay_notice", now,
           amount=amounts.dollars(amount_cents), due=dates.short_date(due, lang),
           card=card_words(brand, card_last4, lang))


def autopay_late(bill_id: int, account: Account, *, lang: str, amount_cents: int, due: date, now: datetime) -> None:
    """A bill that reached us less than two days before its due date: autopay will not pay it."""
    _queue("autopay_late", f"autopay_late:{bill_id}", account, lang, "autopay_late", now,
           amount=amounts.dollars(amount_cents), due=dates.short_date(due, prompts.language(lang)))


def charge_failed(kind: str, row_id: int, account: Account, *, lang: str, amount_cents: int, code: str | None,
                  now: datetime, payment_id: int | None = None) -> None:
    """A scheduled payment's or an autopay bill's charge failed: why, that nothing was charged, how to pay.

    ``kind`` is ``scheduled_failed`` or ``autopay_failed``.
    """
    reason = prompts.text(_REASONS.get(code or "", "sms.reason_declined"), prompts.language(lang))
    _queue(kind, f"{kind}:{row_id}", account, lang, kind, now, payment_id=payment_id,
           amount=amounts.dollars(amount_cents), reason=reason)
