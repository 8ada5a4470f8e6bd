"""Scheduled payments: schedule one from a call, list the upcoming ones, cancel one until 24 hours before.

Nothing here commits: a call schedules or cancels in the same transaction as the call's answer, and
``/ops`` commits with its audit entry. The worker charges them (``ivr.later.worker``).
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from flows.decisions import pay_day_problem

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..money.saved_cards import saved_card_of
from . import rules
from .models import CALL_CARD, CANCELLED, SAVED_CARD, SCHEDULED, ScheduledPayment

logger = logging.getLogger(__name__)

MAX_UPCOMING = 8  # scheduled payments one account may have waiting (the phone lists eight)


class Refused(Exception):
    """The payment cannot be scheduled: ``reason`` is ``past``, ``after_due``, ``no_due_date``,
    ``amount``, ``no_card`` or ``too_many``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeptCard:
    """A card tokenized in the call for one later payment: Stripe's ids and what the caller may hear."""

    customer: str
    payment_method: str
    brand: str | None
    last4: str | None


def upcoming(account_id: int) -> list[ScheduledPayment]:
    """The account's payments still waiting for their day, soonest first."""
    return list(
        db.session.scalars(
            sa.select(ScheduledPayment)
            .where(ScheduledPayment.account_id == account_id, ScheduledPayment.status == SCHEDULED)
            .order_by(ScheduledPayment.charge_at, ScheduledPayment.id)
        )
    )


def cancellable(row: ScheduledPayment, now: datetime) -> bool:
    """Still waiting, and more than 24 hours before it is charged."""
    return row.status == SCHEDULED and now < rules.cancel_deadline(row.charge_at)


def schedule(
    account: Account,
    *,
    amount_cents: int,
    pay_on: date,
    created_key: str,
    call_sid: str | None,
    language: str,
    now: datetime,
    kept: KeptCard | None = None,
) -> ScheduledPayment:
    """Schedule a payment of ``amount_cents`` on ``pay_on``, with the card on file or ``kept``, once per ``created_key``.

    ``created_key`` names the answer that confirmed it (call and seq): a confirmation delivered
    twice finds the first one's row. The caller commits.

    :raises Refused: the day is past or after the due date, no card, or too many waiting.
    """
    existing = db.session.scalar(sa.select(ScheduledPayment).where(ScheduledPayment.created_key == created_key))
    if existing is not None:
        return existing
    problem = pay_day_problem(pay_on, rules.local_day(now), account.due_date)
    if problem is not None:
        raise Refused(problem)
    if amount_cents < int(current_app.config["MIN_PAYMENT_CENTS"]):
        raise Refused("amount")
    if len(upcoming(account.id)) >= MAX_UPCOMING:
        raise Refused("too_many")
    if kept is None:
        card = saved_card_of(account.id)
        if card is None:
            raise Refused("no_card")
        source, brand, last4, customer, payment_method = SAVED_CARD, card.card_brand, card.card_last4, None, None
    else:
        source, brand, last4 = CALL_CARD, kept.brand, kept.last4
        customer, payment_method = kept.customer, kept.payment_method
    charge_at = rules.charge_moment(pay_on)
    row = ScheduledPayment(
        account_id=account.id,
        amount_cents=amount_cents,
        pay_on=pay_on,
        charge_at=charge_at,
        next_attempt_at=charge_at,
        status=SCHEDULED,
        card_source=source,
        card_brand=brand,
        card_last4=last4,
        stripe_customer=customer,
        stripe_payment_method=payment_method,
        language=language,
        created_key=created_key,
        created_call_sid=call_sid,
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same confirmation, answered by another process a moment ago
        found = db.session.scalar(sa.select(ScheduledPayment).where(ScheduledPayment.created_key == created_key))
        assert found is not None
        return found
    logger.info("payment %s scheduled for %s on account %s (%s card)", row.id, pay_on.isoformat(),
                mask(account.account_number), source)
    return row


def cancel(row_id: int, *, by: str, now: datetime, account_id: int | None = None) -> str:
    """Cancel a waiting payment until 24 hours before its charge: ``cancelled``, ``too_late`` or ``gone``.

    ``account_id`` (a caller's account) must own it; ``by`` is ``member`` or ``staff:<name>``.
    One conditional update, so a worker that has claimed it, or a second cancel, changes nothing.
    The caller commits.
    """
    conditions = [
        ScheduledPayment.id == row_id,
        ScheduledPayment.status == SCHEDULED,
        ScheduledPayment.charge_at > now + rules.CANCEL_BEFORE,
    ]
    if account_id is not None:
        conditions.append(ScheduledPayment.account_id == account_id)
    changed = db.session.execute(
        sa.update(ScheduledPayment)
        .where(*conditions)
        .values(status=CANCELLED, cancelled_at=now, cancelled_by=by, finished_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    row = db.session.get(ScheduledPayment, row_id, populate_existing=True)
    if changed == 1:
        assert row is not None
        logger.info("scheduled payment %s cancelled by %s", row_id, by.split(":")[0])
        return "cancelled"
    if row is None or row.status != SCHEDULED or (account_id is not None and row.account_id != account_id):
        return "gone"
    return "too_late"
