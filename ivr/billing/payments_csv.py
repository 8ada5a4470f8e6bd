"""The payments posting file the co-op loads into its billing system (contract.md)."""

import csv
from datetime import UTC, date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from prompts.amounts import decimal

from ..models import Account, Payment

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
)
# Money that actually moved; pending, declined and error attempts never reach the ledger.
POSTED_STATUSES = ("succeeded", "refunded", "disputed")
# Twilio <Pay> reports brands in display form; the file promises Stripe's lower-case names.
_BRANDS = {"american express": "amex", "americanexpress": "amex", "master card": "mastercard"}


def export_payments(
    session: Session, out: IO[str], *, on_date: date | None = None, tz: str = "UTC"
) -> int:
    """Write posted payments to ``out`` as CSV, oldest first, and return how many rows.

    ``on_date`` keeps payments made on that calendar day in the time zone ``tz`` (an IANA
    name; the ``ivr payments export`` command passes ``ORG_TIMEZONE``). ``paid_at`` is
    always written in UTC.
    """
    # A posted payment should always have paid_at; falling back keeps it in the file if not.
    paid_at = sa.func.coalesce(Payment.paid_at, Payment.created_at)
    stmt = (
        sa.select(
            Payment.confirmation_number,
            Account.account_number,
            Payment.amount_cents,
            Payment.currency,
            Payment.paid_at,
            Payment.created_at,
            Payment.channel,
            Payment.card_brand,
            Payment.card_last4,
            Payment.stripe_payment_intent,
            Payment.status,
            Payment.refunded_cents,
        )
        .join(Account, Payment.account_id == Account.id)
        .where(Payment.status.in_(POSTED_STATUSES))
        .order_by(paid_at, Payment.id)
    )
    if on_date is not None:
        start, end = day_bounds(on_date, tz)
        stmt = stmt.where(paid_at >= start, paid_at < end)

    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in session.execute(stmt):
        writer.writerow(
            (
                row.confirmation_number or "",
                row.account_number,
                decimal(row.amount_cents),
                (row.currency or "usd").upper(),
                _utc_iso(row.paid_at or row.created_at),
                row.channel,
                _brand(row.card_brand),
                row.card_last4 or "",
                row.stripe_payment_intent or "",
                row.status,
                decimal(row.refunded_cents or 0),
            )
        )
        count += 1
    return count


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
