"""The posting file the co-op loads into its billing system: one row per money movement (contract.md)."""

import csv
from datetime import UTC, date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from prompts.amounts import decimal

from ..models import Account, Payment
from ..money.models import FEE, MoneyMovement

COLUMNS = (
    "confirmation_number",
    "account_number",
    "amount",
    "currency",
    "paid_at",
    "channel",
    "card_brand",
    "card_last4",
    "stripe_payment_intent",
    "status",
    # Extra columns go after the contract's ten, which billing systems read by position.
    "refunded_amount",
    "type",
    "entry_id",
)
# Rows fetched from the database at a time: a busy day streams through in constant memory.
BATCH_ROWS = 1000
# Twilio <Pay> reports brands in display form; the file promises Stripe's lower-case names.
_BRANDS = {"american express": "amex", "americanexpress": "amex", "master card": "mastercard"}


def export_payments(
    session: Session, out: IO[str], *, on_date: date | None = None, tz: str = "UTC"
) -> int:
    """Write every money movement to ``out`` as CSV, oldest first, and return how many rows.

    One row per movement (``money_movements``): a payment positive; a refund or a dispute negative,
    on the day it happened, with the original payment's confirmation number; a won dispute
    positive; a convenience fee its own ``fee`` row beside its payment (negative when it went
    back). ``on_date`` keeps the movements of that calendar day in the time zone ``tz`` (an IANA
    name; the ``ivr payments export`` command passes ``ORG_TIMEZONE``). ``paid_at`` is when the
    row's money moved, always in UTC; ``status`` is the payment's as it stands now and
    ``refunded_amount`` what has gone back of the row's kind of money (the fee's on a fee row, the
    amount's on the others); ``entry_id`` is the same in every export, so nothing is posted twice.
    """
    stmt = (
        sa.select(
            Payment.confirmation_number,
            Account.account_number,
            MoneyMovement.amount_cents,
            Payment.currency,
            MoneyMovement.occurred_at,
            Payment.channel,
            Payment.card_brand,
            Payment.card_last4,
            Payment.stripe_payment_intent,
            Payment.status,
            Payment.refunded_cents,
            Payment.amount_cents.label("bill_cents"),
            MoneyMovement.type,
            MoneyMovement.entry_id,
        )
        .join(Payment, MoneyMovement.payment_id == Payment.id)
        .join(Account, Payment.account_id == Account.id)
        .order_by(MoneyMovement.occurred_at, MoneyMovement.id)
    )
    if on_date is not None:
        start, end = day_bounds(on_date, tz)
        stmt = stmt.where(MoneyMovement.occurred_at >= start, MoneyMovement.occurred_at < end)

    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    # yield_per: rows arrive in batches (a server-side cursor on PostgreSQL), never a whole day at once.
    for row in session.execute(stmt.execution_options(yield_per=BATCH_ROWS)):
        writer.writerow(
            (
                row.confirmation_number or "",
                row.account_number,
                decimal(row.amount_cents),
                (row.currency or "usd").upper(),
                _utc_iso(row.occurred_at),
                row.channel,
                _brand(row.card_brand),
                row.card_last4 or "",
                row.stripe_payment_intent or "",
                row.status,
                decimal(_refunded(row.type, row.refunded_cents or 0, row.bill_cents)),
                row.type,
                row.entry_id,
            )
        )
        count += 1
    return count


def _refunded(kind: str, refunded_cents: int, bill_cents: int) -> int:
    """The row's kind of money refunded so far: a fee row the fee's, every other row the bill's.

    Refunds take the bill first (``money.movements``), so the total splits without a lookup.
    """
    bill = min(refunded_cents, bill_cents)
    return refunded_cents - bill if kind == FEE else bill


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants where ``day`` starts and the next day starts, in time zone ``tz``."""
    zone = ZoneInfo(tz)
    # Each midnight is placed separately, so a daylight-saving day is 23 or 25 hours long.
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _brand(brand: str | None) -> str:
    value = (brand or "").strip().lower()
    return _BRANDS.get(value, value.replace(" ", ""))
