"""``ivr worker``'s pass over paying later: autopay notices, then the day's scheduled payments and autopay bills.

Exactly once, under crashes and several workers:

- a row is claimed before it is charged: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on both
  databases a compare-and-set on ``attempts`` that only one worker can win (the outbox engine's
  approach), committed before any money moves;
- the charge goes through the one charge step with the row's attempt key (``scheduled:<id>``,
  ``autopay:<account id>:<due date>``), which is Stripe's idempotency key and unique on
  ``payments``: a worker that died after Stripe charged leaves the row ``charging``; once its claim
  expires the next pass charges again with the same key, Stripe answers with the same
  PaymentIntent, and the payment is settled once;
- the payment's settling and the row's outcome commit together; an attempt already settled (by
  Stripe's webhook, say) is read, not charged again, and an attempt older than Stripe's memory of
  its key is never sent again.

A declined charge is not retried: the member is texted and may pay by phone. Stripe unreachable is
tried again with the same key for a few hours, then given up the same way.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..masking import mask
from ..models import Account, Payment, utcnow
from ..money import charge, saved_cards
from ..reminders import clock
from ..terminal.words import count
from . import rules, texts
from .models import (
    CALL_CARD,
    CANCELLED,
    CHARGING,
    ENDED,
    FAILED,
    NOTICED,
    PAID,
    SCHEDULED,
    SKIPPED,
    AutopayBill,
    AutopayEnrollment,
    ScheduledPayment,
)

logger = logging.getLogger(__name__)

BATCH = 50  # rows claimed at a time; a full batch makes the loop go again at once
SETTLED = ("succeeded", "refunded", "disputed")  # an attempt that took the money


@dataclass
class LaterReport:
    """What one pass did: notices queued, charges paid, failed (texted), retried later, skipped or cancelled."""

    noticed: int = 0
    paid: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    more_due: bool = field(default=False, compare=False, repr=False)

    @property
    def total(self) -> int:
        """Rows this pass touched."""
        return self.noticed + self.paid + self.failed + self.retried + self.skipped


def summary(report: LaterReport) -> str:
    """One pass in a sentence for the terminal: ``Charged 2 payments made later, 1 failed (texted)``."""
    parts = [f"Charged {count(report.paid, 'payment made later', 'payments made later')}"]
    if report.failed:
        parts.append(f"{report.failed} failed (the member is texted)")
    if report.retried:
        parts.append(f"{report.retried} will be retried")
    if report.skipped:
        parts.append(f"{report.skipped} not charged (cancelled or nothing owed)")
    if report.noticed:
        parts.append(f"{count(report.noticed, 'autopay bill')} taken on (notice texted)")
    return ", ".join(parts)


def run_pass(now: datetime | None = None, *, limit: int = BATCH) -> LaterReport:
    """Queue autopay's notices, charge what is due (scheduled payments first), let go of kept cards."""
    now = now or clock.now()
    report = LaterReport()
    report.noticed = queue_autopay_notices(now)
    for kind in (SCHEDULED_PAYMENTS, AUTOPAY_BILLS):
        ids, full = _claim(kind, now, limit)
        report.more_due = report.more_due or full
        for row_id in ids:
            outcome = _charge_row(kind, row_id, now)
            setattr(report, outcome, getattr(report, outcome) + 1)
    release_kept_cards()
    return report


def run_until_done(now: datetime | None = None, *, limit: int = BATCH) -> LaterReport:
    """Passes until nothing more is due at ``now`` (``ivr worker --once``, a day's backlog); the totals.

    Each pass claims and commits one batch, so a day of 100,000 charges is never in memory at once.
    It ends: a row charged, failed or skipped is done, and one Stripe could not take waits its retry time.
    """
    now = now or clock.now()
    total = LaterReport()
    while True:
        report = run_pass(now, limit=limit)
        for name in ("noticed", "paid", "failed", "retried", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        db.session.expunge_all()  # the pass committed: its rows are not needed again
        if not report.more_due:
            return total


# --- autopay's notices ------------------------------------------------------------------------------


NOTICE_BATCH = 500  # enrolments read at a time: a co-op's whole autopay list is never in memory at once


def queue_autopay_notices(now: datetime, *, batch: int = NOTICE_BATCH) -> int:
    """Take on each enrolled account's bill two days before its due date: its row and its notice, once.

    A bill is an account and a due date (a new due date from the accounts import is a new bill);
    the row's unique (account, due date) makes re-imports and a second worker find it taken. A bill
    that reaches us later than that is not charged: the member is told to pay it another way.
    Enrolments are read ``batch`` at a time in account order, each batch committed.
    """
    queued, after = 0, 0
    while True:
        done, after, full = _notice_batch(now, after, batch)
        queued += done
        if not full:
            return queued


def _notice_batch(now: datetime, after: int, limit: int) -> tuple[int, int, bool]:
    """One batch of ``queue_autopay_notices``: accounts numbered above ``after``; returns (queued, last id, full)."""
    today = rules.local_day(now)
    taken = sa.exists().where(AutopayBill.account_id == Account.id, AutopayBill.due_date == Account.due_date)
    candidates = db.session.execute(
        sa.select(AutopayEnrollment, Account)
        .join(Account, Account.id == AutopayEnrollment.account_id)
        .where(
            Account.id > after,
            AutopayEnrollment.active.is_(True),
            Account.status == "active",
            Account.balance_cents >= int(current_app.config["MIN_PAYMENT_CENTS"]),
            Account.due_date.between(today, today + timedelta(days=rules.NOTICE_DAYS)),
            ~taken,
        )
        .order_by(Account.id)
        .limit(limit)
    ).all()
    queued = 0
    for enrollment, account in candidates:
        after = account.id
        due = account.due_date
        assert due is not None
        if due < rules.first_autopay_due(enrollment.enrolled_at):
            continue  # due before autopay began: the member pays it as before
        card = saved_cards.saved_card_of(account.id)
        on_time = (due - today).days >= rules.NOTICE_DAYS
        charge_at = rules.charge_moment(due)
        bill = AutopayBill(
            account_id=account.id, due_date=due, enrollment_id=enrollment.id, amount_cents=account.balance_cents,
            status=NOTICED, charge_at=charge_at, next_attempt_at=charge_at, created_at=now,
        )
        if card is None:
            bill.status, bill.failure_code, bill.finished_at = FAILED, "no_card", now
        elif not on_time:
            bill.status, bill.failure_code, bill.finished_at = SKIPPED, "late_bill", now
        try:
            with db.session.begin_nested():
                db.session.add(bill)
        except IntegrityError:
            continue  # another worker took this bill a moment ago
        lang = enrollment.consent_language
        if card is None:
            texts.charge_failed("autopay_failed", bill.id, account, lang=lang, amount_cents=bill.amount_cents,
                                code="no_card", now=now)
        elif not on_time:
            texts.autopay_late(bill.id, account, lang=lang, amount_cents=bill.amount_cents, due=due, now=now)
        else:
            texts.autopay_notice(bill.id, account, lang=lang, amount_cents=bill.amount_cents, due=due,
                                 brand=card.card_brand, card_last4=card.card_last4, now=now)
        logger.info("autopay: bill due %s of account %s %s", due.isoformat(), mask(account.account_number),
                    "noticed" if bill.status == NOTICED else f"{bill.status} ({bill.failure_code})")
        queued += 1
    db.session.commit()
    return queued, after, len(candidates) == limit


# --- charging ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeKind:
    """One table of charges made later: how a due row is found, checked, priced, charged and told of."""

    name: str
    model: Any  # ScheduledPayment | AutopayBill
    ready: str  # the status of a row waiting for its moment
    channel: str  # the payments' channel (posting file, /ops)
    failed_text: str  # the outbox kind of the member's text when it fails
    # Why the row must end without a charge (status, failure code), or None.
    stop: Callable[[Any, Account], tuple[str, str] | None]
    language: Callable[[Any], str]
    metadata: Callable[[Any], dict[str, str]]


def _scheduled_stop(row: ScheduledPayment, account: Account) -> tuple[str, str] | None:
    if account.status != "active":
        return SKIPPED, "account_inactive"
    return None


def _autopay_stop(row: AutopayBill, account: Account) -> tuple[str, str] | None:
    enrollment = db.session.scalar(sa.select(AutopayEnrollment).where(AutopayEnrollment.account_id == row.account_id))
    # Stopped since the notice, or stopped and enrolled again with this bill before the new start.
    if enrollment is None or not enrollment.active or row.due_date < rules.first_autopay_due(enrollment.enrolled_at):
        return CANCELLED, "autopay_stopped"
    if account.status != "active":
        return SKIPPED, "account_inactive"
    return None


def _autopay_language(row: AutopayBill) -> str:
    enrollment = db.session.scalar(sa.select(AutopayEnrollment).where(AutopayEnrollment.account_id == row.account_id))
    return enrollment.consent_language if enrollment is not None else row.account.language


SCHEDULED_PAYMENTS = ChargeKind(
    name="scheduled payment",
    model=ScheduledPayment,
    ready=SCHEDULED,
    channel="scheduled",
    failed_text="scheduled_failed",
    stop=_scheduled_stop,
    language=lambda row: row.language,
    metadata=lambda row: {"scheduled_payment_id": str(row.id), "pay_on": row.pay_on.isoformat()},
)
AUTOPAY_BILLS = ChargeKind(
    name="autopay bill",
    model=AutopayBill,
    ready=NOTICED,
    channel="autopay",
    failed_text="autopay_failed",
    stop=_autopay_stop,
    language=_autopay_language,
    metadata=lambda row: {"autopay_bill_id": str(row.id), "due_date": row.due_date.isoformat()},
)


def _claim(kind: ChargeKind, now: datetime, limit: int) -> tuple[list[int], bool]:
    """Claim the rows due by ``now`` and the ones a stopped worker left ``charging``; commit the claims.

    Returns the claimed ids and whether the batch was full (more may be due).
    """
    model = kind.model
    due = sa.and_(model.status == kind.ready, model.next_attempt_at <= now)
    abandoned = sa.and_(model.status == CHARGING, model.claimed_until < now)
    rows = db.session.execute(
        sa.select(model.id, model.status, model.attempts)
        .where(sa.or_(due, abandoned))
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        # PostgreSQL: rows another worker has locked are skipped. SQLite renders nothing; there the
        # compare-and-set below keeps two workers off the same row.
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row_id, status, attempts in rows:
        won = db.session.execute(
            sa.update(model)
            .where(model.id == row_id, model.status == status, model.attempts == attempts)
            .values(status=CHARGING, claimed_until=now + rules.CLAIM_FOR, attempts=attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            continue
        if status == CHARGING:
            logger.warning("%s %s was left charging by a stopped worker; charging again with its attempt key",
                           kind.name, row_id)
        claimed.append(row_id)
    db.session.commit()  # the claims are on record before any money moves
    return claimed, len(rows) == limit


def _charge_row(kind: ChargeKind, row_id: int, now: datetime) -> str:
    """Charge one claimed row and commit its outcome with the payment's; return the report's field."""
    row = db.session.get(kind.model, row_id, populate_existing=True)
    assert row is not None and row.status == CHARGING
    account = row.account
    payment = db.session.scalar(sa.select(Payment).where(Payment.attempt_key == row.attempt_key))
    if payment is not None:
        if payment.status in SETTLED:  # charged before a crash, or settled by Stripe's webhook
            return _end(row, PAID, now, payment=payment)
        if payment.status == "declined":
            return _failed(kind, row, account, payment.decline_code, now, payment)
        # Stripe's memory of a key is wall-clock time, whatever moment this pass was asked to act for.
        if payment.created_at < utcnow() - rules.ATTEMPT_KEY_SAFE_FOR:
            # Stripe may have forgotten the key: sending it again could charge twice. Stripe's
            # webhook settles the payment if the first try went through; a person checks.
            logger.error("%s %s: attempt %s has an unknown outcome and is too old to send again",
                         kind.name, row.id, payment.id)
            return _end(row, FAILED, now, code="outcome_unknown", payment=payment, field="failed")
    if payment is None:
        stop = kind.stop(row, account)
        if stop is not None:
            return _end(row, stop[0], now, code=stop[1], field="skipped")
        amount = _amount(row, account)
        if amount <= 0:
            return _end(row, SKIPPED, now, code="nothing_owed", field="skipped")
        if amount < int(current_app.config["MIN_PAYMENT_CENTS"]):
            return _end(row, SKIPPED, now, code="below_minimum", field="skipped")
    else:
        # An attempt begun before a crash is finished as it began (autopay stopped since, or the
        # balance changed): the same key with the same amount, so Stripe can only answer it once.
        amount = payment.amount_cents

    def remember(payment: Payment) -> None:
        row.payment_id = payment.id  # committed with the attempt

    language = kind.language(row)
    if isinstance(row, ScheduledPayment) and row.card_source == CALL_CARD:
        if not row.stripe_payment_method or not row.stripe_customer:
            return _failed(kind, row, account, "no_card", now, None, amount)
        outcome = charge.charge_token(
            account, amount, row.attempt_key, row.stripe_payment_method, channel=kind.channel, call_sid=None,
            language=language, caller=None, customer=row.stripe_customer, off_session=True,
            extra_metadata=kind.metadata(row), before_commit=remember,
        )
    else:
        card = saved_cards.saved_card_of(account.id)
        if card is None and payment is None:
            return _failed(kind, row, account, "no_card", now, None, amount)
        if payment is not None and (card is None or card.stripe_payment_method != payment.stripe_payment_method):
            # The card on file changed since the unfinished attempt: its request cannot be sent again
            # as it was, and whether it reached Stripe is unknown. A person checks (the webhook
            # settles it if it went through).
            logger.error("%s %s: the card on file changed during attempt %s; not sent again", kind.name, row.id,
                         payment.id)
            return _end(row, FAILED, now, code="outcome_unknown", payment=payment, field="failed")
        assert card is not None
        outcome = saved_cards.charge_saved(card, amount, row.attempt_key, channel=kind.channel, language=language,
                                           extra_metadata=kind.metadata(row), before_commit=remember)
    row = db.session.get(kind.model, row_id)
    assert row is not None
    if outcome.status == charge.APPROVED:
        return _end(row, PAID, now, payment=outcome.payment)
    if outcome.status == charge.DECLINED:
        return _failed(kind, row, account, outcome.decline_code, now, outcome.payment)
    if now >= row.charge_at + rules.GIVE_UP_AFTER:
        return _failed(kind, row, account, "unavailable", now, db.session.get(Payment, outcome.payment_id), amount)
    # Stripe unreachable: the same key again later (its webhook settles the attempt if it went through).
    row.status, row.claimed_until = kind.ready, None
    row.next_attempt_at = now + rules.retry_delay(row.attempts)
    db.session.commit()
    logger.warning("%s %s: payment processor unavailable; trying again at %s", kind.name, row.id,
                   row.next_attempt_at.isoformat())
    return "retried"


def _amount(row: ScheduledPayment | AutopayBill, account: Account) -> int:
    """What to charge: the amount asked for (an autopay bill: as noticed), never more than is owed
    unless the co-op lets members pay ahead (``MAX_PAYMENT_CENTS``)."""
    if isinstance(row, ScheduledPayment) and current_app.config.get("MAX_PAYMENT_CENTS") is not None:
        return min(row.amount_cents, int(current_app.config["MAX_PAYMENT_CENTS"]))
    return min(row.amount_cents, account.balance_cents)


def _end(row: Any, status: str, now: datetime, *, code: str | None = None, payment: Payment | None = None,
         field: str | None = None) -> str:
    """Record how the row ended and commit (with the payment's settling, when there was a charge)."""
    row.status, row.failure_code, row.finished_at, row.claimed_until = status, code, now, None
    if payment is not None:
        row.payment_id = payment.id
    db.session.commit()
    logger.info("%s %s %s%s", type(row).__name__, row.id, status, f" ({code})" if code else "")
    return field or {PAID: "paid", FAILED: "failed"}.get(status, "skipped")


def _failed(kind: ChargeKind, row: Any, account: Account, code: str | None, now: datetime,
            payment: Payment | None, amount: int | None = None) -> str:
    """A charge that will not be made: text the member why (once) and end the row; never retried."""
    texts.charge_failed(kind.failed_text, row.id, account, lang=kind.language(row), code=code, now=now,
                        amount_cents=payment.amount_cents if payment is not None else int(amount or row.amount_cents),
                        payment_id=payment.id if payment is not None else None)
    return _end(row, FAILED, now, code=code or "declined", payment=payment)


# --- cards kept for one scheduled payment -----------------------------------------------------------


def release_kept_cards(limit: int = BATCH) -> int:
    """Detach at Stripe the cards tokenized for scheduled payments that have ended; return how many."""
    rows = db.session.scalars(
        sa.select(ScheduledPayment)
        .where(ScheduledPayment.card_source == CALL_CARD, ScheduledPayment.status.in_(ENDED),
               ScheduledPayment.stripe_payment_method.is_not(None))
        .order_by(ScheduledPayment.id)
        .limit(limit)
    ).all()
    released = 0
    for row in rows:
        assert row.stripe_payment_method is not None
        if saved_cards.release(row.stripe_payment_method):
            row.stripe_payment_method = None  # let go: nothing can charge it again
            released += 1
        db.session.commit()
    return released
