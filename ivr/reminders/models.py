"""Tables of the reminders feature: reminders sent per bill, SMS opt-outs, callbacks placed, pay-by-text offers."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models import UTCDateTime, utcnow


class Reminder(db.Model):
    """One reminder text queued for one bill; a bill is an (account, due date) pair.

    The unique constraint is the "at most one reminder per bill" rule: a re-run, or two runs at
    once, cannot queue a second text for the same bill, while a new due date is a new bill.
    """

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    due_date: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(10))  # upcoming | past_due
    to_number: Mapped[str] = mapped_column(sa.String(20))
    balance_cents: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("account_id", "due_date", name="uq_reminders_account_id_due_date"),
    )


class SmsOptOut(db.Model):
    """A phone number's reminder consent: ``opted_out`` after STOP, cleared again by START."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20), unique=True)  # E.164
    opted_out: Mapped[bool] = mapped_column(default=True)
    keyword: Mapped[str] = mapped_column(sa.String(20))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Callback(db.Model):
    """One outbound call a member asked for ("Call me now" or a ``PAY`` text).

    ``to_number`` is copied from the account's phone on file when the call is requested; it is
    never taken from the request. Status moves queued -> placing -> calling -> answered ->
    completed, or ends in ``not_reached`` (voicemail, no answer, busy, failed) or ``error``
    (Twilio refused to place it; such a row does not count against the limits).
    """

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    to_number: Mapped[str] = mapped_column(sa.String(20))
    source: Mapped[str] = mapped_column(sa.String(10))  # link | sms
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    call_sid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    call_status: Mapped[str | None] = mapped_column(sa.String(20))
    answered_by: Mapped[str | None] = mapped_column(sa.String(30))
    error_code: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow
    )  # set by the code, on the reminders clock

    __table_args__ = (sa.Index("ix_callbacks_account_id_created_at", "account_id", "created_at"),)


class TextPayOffer(db.Model):
    """A pay-by-text offer: "Reply YES within 10 minutes to pay $84.17 with your Visa ending in 4242."

    Made to the phone on file of an account with a card on file, for the whole balance of one bill
    (the account and its due date), naming the card it will charge. Status moves offered ->
    charging -> paid | declined, or offered -> expired | replaced (a newer PAY from the number).
    The partial unique index is the "one text payment per bill" rule: of one bill's offers, at
    most one is ever being charged or paid, whatever two requests do at once. The payment's
    Stripe idempotency key is ``sms:<id>``, so an offer can never be charged twice either.
    """

    __tablename__ = "text_pay_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    # The card named in the offer. The saved card's row is updated in place when another card
    # replaces it, so its PaymentMethod id is kept too: a YES never pays with a card it did not name.
    saved_card_id: Mapped[int | None] = mapped_column(sa.ForeignKey("saved_cards.id", ondelete="SET NULL"))
    stripe_payment_method: Mapped[str] = mapped_column(sa.String(64))
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    from_number: Mapped[str] = mapped_column(sa.String(20))  # E.164: the phone on file that asked
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    status: Mapped[str] = mapped_column(sa.String(16), default="offered")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When a YES began charging it; cleared when Stripe could not be reached, so a YES may finish it.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"), unique=True)

    __table_args__ = (
        sa.Index("ix_text_pay_offers_from_number_created_at", "from_number", "created_at"),
        sa.Index(
            "uq_text_pay_offers_one_payment_per_bill",
            "account_id",
            "due_date",
            unique=True,
            sqlite_where=sa.text("status IN ('charging', 'paid')"),
            postgresql_where=sa.text("status IN ('charging', 'paid')"),
        ),
    )
