"""The numbers on /ops Today: a few grouped queries, and the kept hours of the days shown.

Days are the co-op's local days (``ORG_TIMEZONE``) turned into UTC bounds, cut into 24 clock hours.
An hour's calls are counted grouped by (state, furthest, channel, ended), a few dozen groups from
which the funnel, containment and hang-ups are read; its payments grouped by channel. The hour of
a row is found by a balanced CASE, five comparisons. The same SQL runs on SQLite and PostgreSQL.

A due date brings a hundred thousand calls and the 30-day charts many more: too many to count at
every view at a co-op's scale. So an hour is counted once it has settled (every call that began
in it has ended, and its payments, counted by when they settled, can no longer change) and kept
(``KeptHour``); a view reads the kept hours and counts only the ones still going. Declines,
refunds and disputes, and receipts (a retry moves one) are read from their rows at every view
(docs/speed.md, "Operations console at scale").
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
from ..voice.call_rows import ENDED_CALL_STATUSES, FUNNEL
from .models import KeptHour

PAID_STATUSES = ("succeeded", "refunded", "disputed")  # the money arrived, whatever happened later
# Receipts as staff think of them: delivered, given up on, or still waiting (quiet or retrying).
RECEIPT_GROUPS = {"sent": "sent", "failed": "failed", "queued": "held", "sending": "held"}
AGENT_STATES = (State.AGENT.value, State.RETURN_TO_AGENT.value)
# Where a call can end without the caller hanging up on us; any other last state is a hang-up.
_ENDS = tuple(s.value for s, step in FLOW.items() if step.final and s != State.HUNG_UP)
# An hour is kept (counted once) this long after it ends once every call that began in it has ended:
# a row written at its last moment is committed well within it.
SETTLE_AFTER = timedelta(minutes=5)
# ... and this long after it ends in any case: Twilio ends a call after four hours at most, and a call
# whose status callback never came will not change any more.
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
    """Calls (how far they got, how they ended) and payments (by channel, by hour) of a day or one of its hours."""

    calls: int = 0
    stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNNEL, 0))  # stage -> calls that got there
    contained: int = 0
    hang_ups: dict[str, int] = field(default_factory=dict)  # state -> calls that hung up there
    by_channel: dict[str, list[int]] = field(default_factory=dict)  # channel -> [payments, cents]
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)  # payments per local hour

    @property
    def paid_cents(self) -> int:
        """Dollars taken, in cents."""
        return sum(cents for _, cents in self.by_channel.values())

    @property
    def containment(self) -> float | None:
        """Share of calls that ended paid or informed without an agent; None without calls."""
        return self.contained / self.calls if self.calls else None

    def add(self, other: "DayFigures") -> None:
        """Add ``other`` (another hour) to these figures."""
        self.calls += other.calls
        self.contained += other.contained
        for stage, count in other.stages.items():
            self.stages[stage] = self.stages.get(stage, 0) + count
        for state, count in other.hang_ups.items():
            self.hang_ups[state] = self.hang_ups.get(state, 0) + count
        for channel, (count, cents) in other.by_channel.items():
            totals = self.by_channel.setdefault(channel, [0, 0])
            totals[0] += count
            totals[1] += cents
        self.by_hour = [a + b for a, b in zip(self.by_hour, other.by_hour, strict=True)]


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


def hour_edges(day: date) -> list[datetime]:
    """The UTC moments where each of the local ``day``'s 24 clock hours begins, and where the day ends.

    A day of 23 or 25 hours (daylight saving) still has 24 hours here; the last absorbs the rest.
    """
    start, end = day_bounds(day)
    return [start + timedelta(hours=h) for h in range(24)] + [end]


def count_hours(day: date, first: int = 0) -> tuple[dict[int, DayFigures], set[int]]:
    """Count the hours of the local ``day`` from hour ``first`` on from their rows: two grouped queries.

    Returns each hour's figures, and the hours with a call not yet ended (Twilio has not said so).
    """
    edges = hour_edges(day)
    out = {h: DayFigures() for h in range(first, 24)}
    going: set[int] = set()
    hour = _bucket(CallSession.created_at, edges).label("hour")
    ended = CallSession.ended_at.is_not(None).label("ended")
    finished = CallSession.call_status.in_(sorted(ENDED_CALL_STATUSES)).label("finished")
    for at, state, furthest, channel, has_ended, is_finished, count in db.session.execute(
        sa.select(hour, CallSession.state, CallSession.furthest, CallSession.channel, ended, finished, sa.func.count())
        .where(CallSession.created_at >= edges[first], CallSession.created_at < edges[-1])
        .group_by("hour", CallSession.state, CallSession.furthest, CallSession.channel, "ended", "finished")
    ):
        figures = out[int(at)]
        figures.calls += count
        for stage in FUNNEL[: FUNNEL.index(furthest) + 1] if furthest in FUNNEL else ():
            figures.stages[stage] += count
        if is_contained(state, furthest, channel):
            figures.contained += count
        if is_hang_up(state, furthest, bool(has_ended)):
            figures.hang_ups[state] = figures.hang_ups.get(state, 0) + count
        if not is_finished:
            going.add(int(at))
    hour = _bucket(Payment.paid_at, edges).label("hour")
    for at, channel, count, cents in db.session.execute(
        sa.select(hour, Payment.channel, sa.func.count(), sa.func.sum(Payment.amount_cents))
        .where(Payment.paid_at >= edges[first], Payment.paid_at < edges[-1], Payment.status.in_(PAID_STATUSES))
        .group_by("hour", Payment.channel)
    ):
        figures = out[int(at)]
        figures.by_channel[channel] = [count, int(cents or 0)]
        figures.by_hour[int(at)] += count
    return out, going


def settled(edges: list[datetime], hour: int, going: set[int], now: datetime) -> bool:
    """True when the ``hour`` (between ``edges``) can no longer change, so its figures can be kept.

    Payments count by when they settled, so an hour over gains none; its calls stop changing once
    every one has ended, or in any case six hours on (``CLOSED_AFTER``).
    """
    end = edges[hour + 1]
    return end + CLOSED_AFTER <= now or (end + SETTLE_AFTER <= now and hour not in going)


def days_figures(days: Sequence[date], known: dict[date, DayFigures] | None = None) -> dict[date, DayFigures]:
    """Each day's figures: ``known`` ones as given; for the rest its kept hours read, the others counted.

    An hour counted here that has settled is kept, so each is counted from its rows about once.
    """
    name = current_app.config["ORG_TIMEZONE"]
    out = dict(known or {})
    wanted = [d for d in days if d not in out]
    kept: dict[date, dict[int, KeptHour]] = {}
    if wanted:
        for row in db.session.scalars(
            sa.select(KeptHour).where(KeptHour.zone == name, KeptHour.day >= min(wanted), KeptHour.day <= max(wanted))
        ):
            kept.setdefault(row.day, {})[row.hour] = row
    now = utcnow()
    for day in wanted:
        hours = kept.get(day, {})
        first = next((h for h in range(24) if h not in hours), 24)
        total = DayFigures()
        for h in range(first):
            total.add(_from_row(hours[h]))
        if first < 24:
            counted, going = count_hours(day, first)
            edges = hour_edges(day)
            for figures in counted.values():
                total.add(figures)
            _keep(day, name, {h: f for h, f in counted.items() if h not in hours and settled(edges, h, going, now)})
        out[day] = total
    return {d: out[d] for d in days}


def _from_row(row: KeptHour) -> DayFigures:
    figures = DayFigures(calls=row.calls, stages={s: row.stages.get(s, 0) for s in FUNNEL}, contained=row.contained,
                         hang_ups=dict(row.hang_ups), by_channel={c: list(v) for c, v in row.by_channel.items()})
    figures.by_hour[row.hour] = sum(count for count, _ in row.by_channel.values())
    return figures


def _keep(day: date, name: str, hours: dict[int, DayFigures]) -> None:
    """Keep settled hours; when a request counting the same day kept some meanwhile, theirs stand (the same numbers)."""
    if not hours:
        return
    try:
        with db.session.begin_nested():
            db.session.add_all(
                KeptHour(day=day, zone=name, hour=h, calls=f.calls, stages=f.stages, contained=f.contained,
                         hang_ups=f.hang_ups, by_channel=f.by_channel)
                for h, f in hours.items()
            )
    except IntegrityError:
        pass


def today_figures(day: date) -> Today:
    """Everything /ops Today shows for the co-op's local ``day``."""
    start, end = day_bounds(day)
    out = Today(day=day)
    counted = days_figures([day])[day]
    out.counted = counted
    out.by_channel = [(channel, count, cents) for channel, (count, cents) in sorted(counted.by_channel.items())]
    out.by_hour = list(counted.by_hour)
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
