"""The operations console's one table: an hour of the co-op's day as /ops Today shows it, kept once it is settled.

Today's charts cover 30 days and a due date brings a hundred thousand calls; counting them at every
view is too slow at a co-op's scale (docs/speed.md, "Operations console at scale"). An hour's
calls stop changing once every one of them has ended, and its payments once it is over, so each
hour is counted once and kept; a day is its 24 hours.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models import UTCDateTime, utcnow


class KeptHour(db.Model):
    """One local clock hour (0-23) of the co-op's ``day`` in ``zone``, settled: its funnel, hang-ups and payments."""

    __tablename__ = "ops_kept_hours"
    __table_args__ = (sa.UniqueConstraint("day", "zone", "hour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    zone: Mapped[str] = mapped_column(sa.String(64))  # ORG_TIMEZONE when counted: another zone, other hours
    hour: Mapped[int] = mapped_column()  # the bucket of /ops Today's payments by hour
    calls: Mapped[int] = mapped_column()  # calls that began in the hour
    stages: Mapped[dict[str, int]] = mapped_column(sa.JSON)  # funnel stage -> calls that got at least that far
    contained: Mapped[int] = mapped_column()
    hang_ups: Mapped[dict[str, int]] = mapped_column(sa.JSON)  # state -> calls that hung up there
    # Payments by when they were paid, which is when they settled: an hour over never gains one.
    by_channel: Mapped[dict[str, list[int]]] = mapped_column(sa.JSON)  # channel -> [payments, cents]
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
