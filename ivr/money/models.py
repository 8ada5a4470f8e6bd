"""The money-movements ledger and refund requests: integer cents, UTC, one row per fact.

A movement is money that moved between the member and the co-op: a payment in, a refund or a
dispute out, a won dispute back in. Its ``entry_id`` comes from the payment or the Stripe object
behind it, so recording the same fact twice (the API answer and a webhook, or a redelivery) finds
the row already there. The posting file is these rows.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import Account, Payment, UTCDateTime, utcnow

PAYMENT = "payment"
REFUND = "refund"
DISPUTE = "dispute"
DISPUTE_WON = "dispute_won"
FEE = "fee"  # a convenience fee charged with a payment (negative when it went back)
TYPES = (PAYMENT, REFUND, DISPUTE, DISPUTE_WON, FEE)


class MoneyMovement(db.Model):
    """One money movement, signed: positive when the co-op receives money, negative when it gives it back."""

    __tablename__ = "money_movements"

    id: Mapped[int] = mapped_column(primary_key=True)
    # pay_<payment id>, re_<Stripe refund id>, dp_<dispute id>, dw_<dispute id>: unique and stable;
    # the fee's part of any of them (type fee) is the same with ":fee" after it.
    entry_id: Mapped[str] = mapped_column(sa.String(96), unique=True)
    type: Mapped[str] = mapped_column(sa.String(16))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    # When the money moved (Stripe's time for refunds and disputes); the posting file's day.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    payment: Mapped[Payment] = relationship()


class RefundRequest(db.Model):
    """A refund a staff member asked for; ``number`` counts them per payment and makes the idempotency key.

    The row is committed before Stripe is called, so a double click with the same number finds it
    and a crash leaves a trace; Stripe's answer (or its webhook) completes it.
    """

    __tablename__ = "refund_requests"
    __table_args__ = (sa.UniqueConstraint("payment_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    number: Mapped[int] = mapped_column()
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    requested_by: Mapped[str] = mapped_column(sa.String(120))
    # pending (asked, answer not yet known) -> succeeded | refused
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def idempotency_key(self) -> str:
        """Stripe's idempotency key for this request: the same request number never refunds twice."""
        return f"refund:{self.payment_id}:{self.number}"


class SavedCard(db.Model):
    """A member's card on file: Stripe's ids with brand and last four, and the consent that allowed it.

    One per account (saving another replaces it). Nothing here can charge a card by itself: the
    customer and PaymentMethod ids mean something only to the co-op's own Stripe account.
    """

    __tablename__ = "saved_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), unique=True)
    stripe_customer: Mapped[str] = mapped_column(sa.String(64))
    stripe_payment_method: Mapped[str] = mapped_column(sa.String(64))
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    # The consent: when, on which channel and call, the payment it followed, and the words the
    # member agreed to (as they heard them, in their language).
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_channel: Mapped[str] = mapped_column(sa.String(16))
    consent_call_sid: Mapped[str | None] = mapped_column(sa.String(64))
    consent_payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    consent_language: Mapped[str] = mapped_column(sa.String(2), default="en")
    consent_words: Mapped[str] = mapped_column(sa.Text)

    account: Mapped[Account] = relationship()
