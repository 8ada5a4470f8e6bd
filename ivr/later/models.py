"""Scheduled payments, autopay enrolments and the bills autopay took on: integer cents, UTC, one row per fact.

A row the worker charges (``ScheduledPayment``, ``AutopayBill``) carries the columns its claim
needs: ``status``, ``next_attempt_at`` (due from), ``claimed_until`` (a worker's claim) and
``attempts`` (the claims so far; the compare-and-set token of the next one).
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import Account, Payment, UTCDateTime, utcnow

# Statuses of a scheduled payment: scheduled -> charging -> paid | failed | skipped; scheduled -> cancelled.
SCHEDULED = "scheduled"
# Statuses of an autopay bill: noticed -> charging -> paid | failed | skipped | cancelled; or skipped at once.
NOTICED = "noticed"
CHARGING = "charging"
PAID = "paid"
FAILED = "failed"
SKIPPED = "skipped"
CANCELLED = "cancelled"
ENDED = (PAID, FAILED, SKIPPED, CANCELLED)

# Where the card of a scheduled payment comes from.
SAVED_CARD = "saved"  # the account's card on file, as it is on the day
CALL_CARD = "call"  # a card tokenized in the call that scheduled it (kept for this one payment)


class ScheduledPayment(db.Model):
    """A payment the member asked for on a later day; ``ivr worker`` charges it on that day, once.

    ``created_key`` (the call and the answer that confirmed it) is unique, so a confirmation
    delivered twice schedules one payment; ``scheduled:<id>`` is the charge's attempt key, so a
    worker that dies after Stripe charged cannot charge twice.
    """

    __tablename__ = "scheduled_payments"
    __table_args__ = (sa.Index("ix_scheduled_payments_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    pay_on: Mapped[date] = mapped_column(sa.Date)  # a calendar day in ORG_TIMEZONE
    charge_at: Mapped[datetime] = mapped_column(UTCDateTime)  # pay_on at SCHEDULED_CHARGE_HOUR
    status: Mapped[str] = mapped_column(sa.String(12), default=SCHEDULED)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    card_source: Mapped[str] = mapped_column(sa.String(8))  # SAVED_CARD | CALL_CARD
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    # Stripe's ids of a card tokenized in the call (CALL_CARD only); never card data. The PaymentMethod
    # is cleared once the worker has detached it (indexed: each pass looks for ones left to let go).
    stripe_customer: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_payment_method: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    created_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    created_call_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(sa.String(120))  # member | staff:<name>
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    # Why it ended unpaid: a decline code, authentication_required, no_card, unavailable, nothing_owed...
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    payment: Mapped[Payment | None] = relationship()

    @property
    def attempt_key(self) -> str:
        """The charge's attempt key (Stripe's idempotency key): one per scheduled payment."""
        return f"scheduled:{self.id}"


class AutopayEnrollment(db.Model):
    """An account's autopay: on or off, with the consent that turned it on (one row per account)."""

    __tablename__ = "autopay_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # The consent: when, on which channel and call, and the words the member agreed to, as heard.
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_channel: Mapped[str] = mapped_column(sa.String(16), default="ivr")
    consent_call_sid: Mapped[str | None] = mapped_column(sa.String(64))
    consent_language: Mapped[str] = mapped_column(sa.String(2), default="en")
    consent_words: Mapped[str] = mapped_column(sa.Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(sa.String(120))  # member | staff:<name>

    account: Mapped[Account] = relationship()


class AutopayBill(db.Model):
    """One bill (an account and a due date) autopay took on: its notice, then its one charge.

    The unique (account, due date) is the "one charge per bill" rule: re-importing the same file,
    or two workers, find the row already there. ``autopay:<account id>:<due date>`` is the
    charge's attempt key.
    """

    __tablename__ = "autopay_bills"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "due_date"),
        sa.Index("ix_autopay_bills_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    due_date: Mapped[date] = mapped_column(sa.Date)
    enrollment_id: Mapped[int] = mapped_column(sa.ForeignKey("autopay_enrollments.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)  # as the notice said it; never more is charged
    status: Mapped[str] = mapped_column(sa.String(12), default=NOTICED)
    charge_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # when the notice was queued
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    payment: Mapped[Payment | None] = relationship()

    @property
    def attempt_key(self) -> str:
        """The charge's attempt key (Stripe's idempotency key): one per bill."""
        return f"autopay:{self.account_id}:{self.due_date.isoformat()}"
