"""The operations console's one table: a past day's call figures and takings, kept once the day is over.

Today's charts cover 30 days; at a co-op's scale that is hundreds of thousands of calls, too many
to count on every page view (docs/speed.md, "Operations console at scale"). A day's calls stop
changing once they have all ended, so its figures are counted once and kept here.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models import UTCDateTime, utcnow


class ClosedDay(db.Model):
    """One local day of the co-op (in ``zone``) whose calls have all ended: what /ops Today shows of it."""

    __tablename__ = "ops_closed_days"
    __table_args__ = (sa.UniqueConstraint("day", "zone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    zone: Mapped[str] = mapped_column(sa.String(64))  # ORG_TIMEZONE when counted: another zone, other days
    calls: Mapped[int] = mapped_column()
    stages: Mapped[dict[str, int]] = mapped_column(sa.JSON)  # funnel stage -> calls that got at least that far
    contained: Mapped[int] = mapped_column()
    hang_ups: Mapped[dict[str, int]] = mapped_column(sa.JSON)  # state -> calls that hung up there
    paid_cents: Mapped[int] = mapped_column(sa.BigInteger)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
