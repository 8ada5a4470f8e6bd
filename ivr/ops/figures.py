"""The numbers on /ops Today: a handful of grouped queries over one day (or 30), each using an index.

Days are the co-op's local days (``ORG_TIMEZONE``) turned into UTC bounds; counts per hour or per
day are ``SUM(CASE …)`` columns of one query, so the same SQL runs on SQLite and PostgreSQL and no
row is fetched to be counted in Python.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from flows import FLOW, State

from ..extensions import db
from ..models import CallSession, Payment
from ..money.models import MoneyMovement
from ..outbox.models import OutboxMessage
from ..voice.call_rows import FUNNEL

PAID_STATUSES = ("succeeded", "refunded", "disputed")  # the money arrived, whatever happened later
# Receipts as staff think of them: delivered, given up on, or still waiting (quiet or retrying).
RECEIPT_GROUPS = {"sent": "sent", "failed": "failed", "queued": "held", "sending": "held"}
AGENT_STATES = (State.AGENT.value, State.RETURN_TO_AGENT.value)
# Where a call can end without the caller hanging up on us; any other last state is a hang-up.
_ENDS = tuple(s.value for s, step in FLOW.items() if step.final and s != State.HUNG_UP)


def zone() -> ZoneInfo:
    """The co-op's time zone."""
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def local(moment: datetime | None) -> datetime | None:
    """A stored UTC moment in the co-op's local time."""
    return moment.astimezone(zone()) if moment else None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC moments where the co-op's local ``day`` begins and the next one begins."""
    tz = zone()
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def today() -> date:
    """The co-op's local date now."""
    return datetime.now(zone()).date()


@dataclass
class Today:
    """One day at a glance."""

    day: date
    by_channel: list[tuple[str, int, int]] = field(default_factory=list)  # channel, count, cents
    declines: list[tuple[str, int]] = field(default_factory=list)  # reason, count
    refunded: tuple[int, int] = (0, 0)  # payments, cents
    disputed: tuple[int, int] = (0, 0)
    receipts: dict[str, int] = field(default_factory=dict)  # sent / failed / held
    funnel: list[tuple[str, int]] = field(default_factory=list)  # calls, then each FUNNEL stage
    contained: int = 0
    hang_ups: list[tuple[str, int]] = field(default_factory=list)  # state, calls
    by_hour: list[int] = field(default_factory=list)  # payments per local hour, 24 values

    @property
    def paid_count(self) -> int:
        """Payments made."""
        return sum(count for _, count, _ in self.by_channel)

    @property
    def paid_cents(self) -> int:
        """Dollars taken, in cents."""
        return sum(cents for _, _, cents in self.by_channel)

    @property
    def calls(self) -> int:
        """Calls that began."""
        return self.funnel[0][1] if self.funnel else 0

    @property
    def containment(self) -> float | None:
        """Share of calls that ended paid or informed without an agent; None without calls."""
        return self.contained / self.calls if self.calls else None


def _buckets(column: sa.ColumnElement, edges: list[datetime]) -> list[sa.ColumnElement]:
    """One ``SUM(CASE …)`` per interval between consecutive ``edges``."""
    return [
        sa.func.coalesce(sa.func.sum(sa.case((sa.and_(column >= lo, column < hi), 1), else_=0)), 0)
        for lo, hi in pairwise(edges)
    ]


def _contained() -> sa.ColumnElement:
    """A call that heard its balance (or paid) and never went to an agent."""
    return sa.and_(
        CallSession.furthest.in_(FUNNEL[1:]),
        CallSession.state.not_in(AGENT_STATES),
        CallSession.channel != "agent",  # an agent sent the caller here
    )


def today_figures(day: date) -> Today:
    """Everything /ops Today shows for the co-op's local ``day``."""
    start, end = day_bounds(day)
    out = Today(day=day)
    paid = sa.and_(Payment.paid_at >= start, Payment.paid_at < end, Payment.status.in_(PAID_STATUSES))
    out.by_channel = [
        (channel, count, int(cents or 0))
        for channel, count, cents in db.session.execute(
            sa.select(Payment.channel, sa.func.count(), sa.func.sum(Payment.amount_cents))
            .where(paid)
            .group_by(Payment.channel)
            .order_by(Payment.channel)
        )
    ]
    out.declines = [
        (reason or "unknown", count)
        for reason, count in db.session.execute(
            sa.select(Payment.decline_code, sa.func.count())
            .where(Payment.created_at >= start, Payment.created_at < end, Payment.status == "declined")
            .group_by(Payment.decline_code)
            .order_by(sa.func.count().desc())
        )
    ]
    # Reversals count on the day the money moved back (the posting file's rows), not the payment's day.
    moved = sa.and_(MoneyMovement.occurred_at >= start, MoneyMovement.occurred_at < end)
    for kind, attribute in (("refund", "refunded"), ("dispute", "disputed")):
        count, cents = db.session.execute(
            sa.select(sa.func.count(sa.distinct(MoneyMovement.payment_id)), sa.func.sum(MoneyMovement.amount_cents))
            .where(moved, MoneyMovement.type == kind)
        ).one()
        setattr(out, attribute, (count, -int(cents or 0)))  # stored negative: money that left
    receipts = {"sent": 0, "failed": 0, "held": 0}
    for status, count in db.session.execute(
        sa.select(OutboxMessage.status, sa.func.count())
        .where(OutboxMessage.kind == "receipt", OutboxMessage.created_at >= start, OutboxMessage.created_at < end)
        .group_by(OutboxMessage.status)
    ):
        if status in RECEIPT_GROUPS:
            receipts[RECEIPT_GROUPS[status]] += count
    out.receipts = receipts
    day_calls = sa.and_(CallSession.created_at >= start, CallSession.created_at < end)
    stages = [
        sa.func.coalesce(sa.func.sum(sa.case((CallSession.furthest.in_(FUNNEL[i:]), 1), else_=0)), 0)
        for i in range(len(FUNNEL))
    ]
    contained = sa.func.coalesce(sa.func.sum(sa.case((_contained(), 1), else_=0)), 0)
    row = db.session.execute(sa.select(sa.func.count(), contained, *stages).where(day_calls)).one()
    out.funnel = [("calls", row[0]), *zip(FUNNEL, (int(v) for v in row[2:]), strict=True)]
    out.contained = int(row[1])
    out.hang_ups = [
        (state, count)
        for state, count in db.session.execute(
            sa.select(CallSession.state, sa.func.count())
            .where(day_calls, CallSession.ended_at.is_not(None), CallSession.state.not_in(_ENDS),
                   # Hanging up after paying is the natural end of a call, not giving up.
                   sa.or_(CallSession.furthest.is_(None), CallSession.furthest != "paid"))
            .group_by(CallSession.state)
            .order_by(sa.func.count().desc())
        )
    ]
    hours = [start + timedelta(hours=h) for h in range(25)]
    # A day of 23 or 25 hours (daylight saving) still shows 24 local clock hours; the last absorbs the rest.
    hours[-1] = end
    out.by_hour = [int(v) for v in db.session.execute(sa.select(*_buckets(Payment.paid_at, hours)).where(paid)).one()]
    return out


@dataclass
class Trend:
    """Payments (cents) and containment per local day, oldest first."""

    days: list[date]
    paid_cents: list[int]
    containment: list[float | None]


def trend(last_day: date, days: int = 30) -> Trend:
    """The ``days`` local days that end with ``last_day``: two queries in all."""
    dates = [last_day - timedelta(days=n) for n in range(days - 1, -1, -1)]
    edges = [day_bounds(d)[0] for d in dates] + [day_bounds(last_day)[1]]
    paid_cols = [
        sa.func.coalesce(sa.func.sum(sa.case((sa.and_(Payment.paid_at >= lo, Payment.paid_at < hi), Payment.amount_cents),
                                             else_=0)), 0)
        for lo, hi in pairwise(edges)
    ]
    paid = db.session.execute(
        sa.select(*paid_cols).where(
            Payment.paid_at >= edges[0], Payment.paid_at < edges[-1], Payment.status.in_(PAID_STATUSES)
        )
    ).one()
    span = sa.and_(CallSession.created_at >= edges[0], CallSession.created_at < edges[-1])
    calls = db.session.execute(sa.select(*_buckets(CallSession.created_at, edges)).where(span)).one()
    contained = db.session.execute(
        sa.select(*_buckets(CallSession.created_at, edges)).where(span, _contained())
    ).one()
    return Trend(
        days=dates,
        paid_cents=[int(v) for v in paid],
        containment=[(int(c) / int(n)) if n else None for c, n in zip(contained, calls, strict=True)],
    )
