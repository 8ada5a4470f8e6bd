"""The numbers on /ops Today: a few grouped queries over one day, and 30 days of kept day figures.

Days are the co-op's local days (``ORG_TIMEZONE``) turned into UTC bounds. A day's calls are one
query grouped by (state, furthest, channel, ended), a few dozen groups from which the funnel,
containment and hang-ups are read; the day's payments are one query grouped by channel and local
hour (a CASE that finds the hour in five comparisons). The same SQL runs on SQLite and PostgreSQL.

The 30-day charts would count hundreds of thousands of calls on every view at a co-op's scale, so
a day whose calls have all ended is counted once and kept (``ClosedDay``); only a day not yet over
is counted from its rows each time (docs/speed.md, "Operations console at scale").
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from flows import FLOW, State

from ..extensions import db
from ..models import CallSession, Payment, utcnow
from ..money.models import DISPUTE, REFUND, MoneyMovement
from ..outbox.models import OutboxMessage
from ..voice.call_rows import FUNNEL
from .models import ClosedDay

PAID_STATUSES = ("succeeded", "refunded", "disputed")  # the money arrived, whatever happened later
# Receipts as staff think of them: delivered, given up on, or still waiting (quiet or retrying).
RECEIPT_GROUPS = {"sent": "sent", "failed": "failed", "queued": "held", "sending": "held"}
AGENT_STATES = (State.AGENT.value, State.RETURN_TO_AGENT.value)
# Where a call can end without the caller hanging up on us; any other last state is a hang-up.
_ENDS = tuple(s.value for s, step in FLOW.items() if step.final and s != State.HUNG_UP)
# When a day's calls have all ended and its figures can be kept: Twilio ends a call after four hours
# at most, and the call's status callback closes its row.
CLOSED_AFTER = timedelta(hours=6)


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
class DayFigures:
    """A day's calls (how far they got, how they ended) and the money taken: the funnel and the 30-day charts."""

    calls: int = 0
    stages: dict[str, int] = field(default_factory=dict)  # FUNNEL stage -> calls that got at least that far
    contained: int = 0
    hang_ups: dict[str, int] = field(default_factory=dict)  # state -> calls that hung up there
    paid_cents: int = 0

    @property
    def containment(self) -> float | None:
        """Share of calls that ended paid or informed without an agent; None without calls."""
        return self.contained / self.calls if self.calls else None


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
    counted: DayFigures = field(default_factory=DayFigures)  # the day's line of the 30-day charts

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


def _bucket(column: sa.ColumnElement, edges: list[datetime]) -> sa.ColumnElement[int]:
    """Which interval between consecutive ``edges`` holds ``column`` (0 for the first), for rows within the edges.

    A balanced CASE: a row costs log2(intervals) comparisons, where one ``SUM(CASE …)`` column per
    interval cost two comparisons and a sum per interval for every row.
    """

    def within(lo: int, hi: int) -> sa.ColumnElement[int]:
        if hi - lo == 1:
            return sa.literal_column(str(lo), sa.Integer)
        mid = (lo + hi) // 2
        return sa.case((column < edges[mid], within(lo, mid)), else_=within(mid, hi))

    return within(0, len(edges) - 1)


def is_contained(state: str, furthest: str | None, channel: str) -> bool:
    """A call that heard its balance (or paid) and never went to an agent."""
    return furthest in FUNNEL[1:] and state not in AGENT_STATES and channel != "agent"  # agent: an agent sent the caller


def is_hang_up(state: str, furthest: str | None, ended: bool) -> bool:
    """A call that ended in a state that is not an end of the flow (hanging up after paying is not giving up)."""
    return ended and state not in _ENDS and furthest != "paid"


def count_day(day: date) -> DayFigures:
    """Count a local day's calls and takings from their rows: two queries, a few dozen groups."""
    start, end = day_bounds(day)
    ended = CallSession.ended_at.is_not(None)
    out = DayFigures(stages=dict.fromkeys(FUNNEL, 0))
    for state, furthest, channel, has_ended, count in db.session.execute(
        sa.select(CallSession.state, CallSession.furthest, CallSession.channel, ended, sa.func.count())
        .where(CallSession.created_at >= start, CallSession.created_at < end)
        .group_by(CallSession.state, CallSession.furthest, CallSession.channel, ended)
    ):
        out.calls += count
        for stage in FUNNEL[: FUNNEL.index(furthest) + 1] if furthest in FUNNEL else ():
            out.stages[stage] += count
        if is_contained(state, furthest, channel):
            out.contained += count
        if is_hang_up(state, furthest, bool(has_ended)):
            out.hang_ups[state] = out.hang_ups.get(state, 0) + count
    out.paid_cents = int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0)).where(
                Payment.paid_at >= start, Payment.paid_at < end, Payment.status.in_(PAID_STATUSES)
            )
        )
        or 0
    )
    return out


def closed(day: date) -> bool:
    """True when every call of the local ``day`` has ended, so its figures no longer change."""
    return day_bounds(day)[1] + CLOSED_AFTER <= utcnow()


def days_figures(days: Sequence[date], known: dict[date, DayFigures] | None = None) -> dict[date, DayFigures]:
    """Each day's figures: ``known`` ones as given, kept ones read, the rest counted (and kept once closed)."""
    name = current_app.config["ORG_TIMEZONE"]
    out = dict(known or {})
    wanted = [d for d in days if d not in out]
    if wanted:
        for row in db.session.scalars(
            sa.select(ClosedDay).where(ClosedDay.zone == name, ClosedDay.day >= min(wanted), ClosedDay.day <= max(wanted))
        ):
            out[row.day] = DayFigures(calls=row.calls, stages={s: row.stages.get(s, 0) for s in FUNNEL},
                                      contained=row.contained, hang_ups=dict(row.hang_ups), paid_cents=row.paid_cents)
    for day in wanted:
        if day not in out:
            out[day] = count_day(day)
            if closed(day):
                _keep(day, name, out[day])
    return {d: out[d] for d in days}


def _keep(day: date, name: str, figures: DayFigures) -> None:
    """Keep a closed day's figures; a request that counted the same day meanwhile has kept the same numbers."""
    try:
        with db.session.begin_nested():
            db.session.add(ClosedDay(day=day, zone=name, calls=figures.calls, stages=figures.stages,
                                     contained=figures.contained, hang_ups=figures.hang_ups,
                                     paid_cents=figures.paid_cents))
    except IntegrityError:
        pass


def today_figures(day: date) -> Today:
    """Everything /ops Today shows for the co-op's local ``day``."""
    start, end = day_bounds(day)
    out = Today(day=day)
    paid = sa.and_(Payment.paid_at >= start, Payment.paid_at < end, Payment.status.in_(PAID_STATUSES))
    hours = [start + timedelta(hours=h) for h in range(25)]
    # A day of 23 or 25 hours (daylight saving) still shows 24 local clock hours; the last absorbs the rest.
    hours[-1] = end
    channels: dict[str, list[int]] = {}
    out.by_hour = [0] * 24
    hour = _bucket(Payment.paid_at, hours).label("hour")
    for channel, at, count, cents in db.session.execute(
        sa.select(Payment.channel, hour, sa.func.count(), sa.func.sum(Payment.amount_cents))
        .where(paid)
        .group_by(Payment.channel, "hour")
    ):
        totals = channels.setdefault(channel, [0, 0])
        totals[0] += count
        totals[1] += int(cents or 0)
        out.by_hour[int(at)] += count
    out.by_channel = [(channel, count, cents) for channel, (count, cents) in sorted(channels.items())]
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
    for kind, count, cents in db.session.execute(
        sa.select(MoneyMovement.type, sa.func.count(sa.distinct(MoneyMovement.payment_id)),
                  sa.func.sum(MoneyMovement.amount_cents))
        .where(MoneyMovement.occurred_at >= start, MoneyMovement.occurred_at < end,
               MoneyMovement.type.in_((REFUND, DISPUTE)))
        .group_by(MoneyMovement.type)
    ):
        setattr(out, "refunded" if kind == REFUND else "disputed", (count, -int(cents or 0)))  # stored negative
    receipts = {"sent": 0, "failed": 0, "held": 0}
    for status, count in db.session.execute(
        sa.select(OutboxMessage.status, sa.func.count())
        .where(OutboxMessage.kind == "receipt", OutboxMessage.created_at >= start, OutboxMessage.created_at < end)
        .group_by(OutboxMessage.status)
    ):
        if status in RECEIPT_GROUPS:
            receipts[RECEIPT_GROUPS[status]] += count
    out.receipts = receipts
    counted = days_figures([day])[day]
    out.counted = counted
    out.funnel = [("calls", counted.calls), *((stage, counted.stages[stage]) for stage in FUNNEL)]
    out.contained = counted.contained
    out.hang_ups = sorted(counted.hang_ups.items(), key=lambda item: (-item[1], item[0]))
    return out


@dataclass
class Trend:
    """Payments (cents) and containment per local day, oldest first."""

    days: list[date]
    paid_cents: list[int]
    containment: list[float | None]


def trend(last_day: date, days: int = 30, last: DayFigures | None = None) -> Trend:
    """The ``days`` local days that end with ``last_day`` (whose figures ``last`` may hold already)."""
    dates = [last_day - timedelta(days=n) for n in range(days - 1, -1, -1)]
    found = days_figures(dates, {last_day: last} if last is not None else None)
    return Trend(
        days=dates,
        paid_cents=[found[d].paid_cents for d in dates],
        containment=[found[d].containment for d in dates],
    )
