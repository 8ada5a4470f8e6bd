"""Database models: accounts, calls, payments and processed webhook events.

Money is integer cents; every timestamp is stored in UTC. The SMS outbox lives with its engine in
``outbox/models.py``.
"""

import re
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


_ROW_ID = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits only, and below 2**63 (SQLite's INTEGER)


def row_id(text: object) -> int | None:
    """A row id written in a URL, a form or a Stripe object's metadata, or None when it is none.

    ``int()`` would take "-1", " 7", "²" (a ValueError) or "٣" (any script's digits), and a number
    past 64 bits, which SQLite refuses with ``OverflowError``: a request must never get that far.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not _ROW_ID.fullmatch(text):
        return None
    return int(text)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back timezone-aware.

    SQLite has no time zones; storing naive UTC everywhere keeps both databases identical.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Account(db.Model):
    """A member account as exported by the co-op's billing system."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(20), index=True)  # E.164
    balance_cents: Mapped[int] = mapped_column(sa.BigInteger)
    past_due_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    # The service address's ZIP code: the caller-ID path's second factor (caller ID does not reveal it).
    zip: Mapped[str | None] = mapped_column(sa.String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    payments: Mapped[list["Payment"]] = relationship(back_populates="account")

    @property
    def last4(self) -> str:
        """The account number's last four digits, the only part ever spoken or logged."""
        return self.account_number[-4:]


class VerificationFailure(db.Model):
    """One failed identification (an existing account's drive the lockout).

    ``account_id`` is None when the number keyed is no account: that failure is written too, so it
    costs what a wrong last four costs and the answer's timing cannot tell the two apart.
    """

    __tablename__ = "verification_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class CallSession(db.Model):
    """A call's progress through the flow, keyed by Twilio's CallSid.

    ``seq`` numbers the TwiML answers; an action URL carries the seq it answers, so a request
    Twilio delivers twice is recognised and gets the saved answer instead of advancing twice.
    """

    __tablename__ = "call_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    from_number: Mapped[str | None] = mapped_column(sa.String(32))
    to_number: Mapped[str | None] = mapped_column(sa.String(32))
    channel: Mapped[str] = mapped_column(sa.String(16), default="ivr")
    state: Mapped[str] = mapped_column(sa.String(40))
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    seq: Mapped[int] = mapped_column(default=0)
    last_twiml: Mapped[str | None] = mapped_column(sa.Text)
    call_status: Mapped[str | None] = mapped_column(sa.String(20))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How far the caller got (voice.call_rows.FUNNEL) and the states passed, in order (bounded):
    # written by the same UPDATE that saves each step, so the funnel costs no extra round trip.
    furthest: Mapped[str | None] = mapped_column(sa.String(16))
    path: Mapped[list[str] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Bumped by every write. A write made from version N is applied only WHERE version = N, so a
    # menu step saved without a lock never overwrites what another webhook wrote meanwhile
    # (``calls.save``); the ORM checks it too (``version_id_col``).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class Payment(db.Model):
    """One payment attempt: created before Stripe is called, so a crash leaves a trace.

    ``attempt_key`` is the Stripe idempotency key; its unique constraint makes a second
    charge for the same attempt impossible even when two processes race.
    """

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    confirmation_number: Mapped[str | None] = mapped_column(sa.String(12), unique=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    call_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16), default="ivr")
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)  # what goes to the bill
    # The convenience fee the caller accepted, charged with the amount in the same PaymentIntent.
    fee_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    # pending -> succeeded | declined | error ; succeeded -> refunded | disputed
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    decline_code: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_payment_intent: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    # Stripe's ids of what was charged (no card data): a member may then agree to keep this card.
    stripe_customer: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_payment_method: Mapped[str | None] = mapped_column(sa.String(64))
    receipt_to: Mapped[str | None] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # /ops by day
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    refunded_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    account: Mapped[Account] = relationship(back_populates="payments")

    @property
    def charged_cents(self) -> int:
        """What the card was charged: the amount and the convenience fee."""
        return self.amount_cents + (self.fee_cents or 0)

    # /ops: a status over any span of days, newest first (disputes this year), reads only those rows,
    # in order; a day's declines by reason are counted from the index alone. Anything that looked
    # payments up by status alone still can.
    __table_args__ = (
        sa.Index("ix_payments_status_created_at_decline_code", "status", "created_at", "decline_code"),
    )


class ProcessedEvent(db.Model):
    """A Stripe event already applied; the unique id makes a redelivery a no-op."""

    __tablename__ = "processed_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(80), unique=True)
    type: Mapped[str] = mapped_column(sa.String(80))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
