"""/ops at a co-op's scale: a day over is counted once and kept, a day not over is counted at every view,
and a list reads its rows in the same few queries however many it shows (docs/speed.md)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from ops_fixtures import AT, DAY, cells, seed_day, staff

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.ops import figures
from ivr.ops.models import ClosedDay
from ivr.outbox.models import OutboxMessage

EVENING = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10 PM of DAY in New York: the day is not over
NEXT_NOON = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)  # noon the day after: every call of DAY has ended


@pytest.fixture
def supervisor(app, client):
    seed_day(app)
    return staff(app, client, "supervisor")


def at(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(figures, "utcnow", lambda: moment)


def add_call(app, sid: str) -> None:
    """A call on DAY that hung up before being identified."""
    with app.app_context():
        db.session.add(CallSession(call_sid=sid, state="ENTER_ACCOUNT", path=["WELCOME", "ENTER_ACCOUNT"],
                                   created_at=AT, ended_at=AT + timedelta(seconds=40), call_status="completed"))
        db.session.commit()


def funnel(client, day: date = DAY) -> list[list[str]]:
    return cells(client.get(f"/ops?date={day}").get_data(as_text=True), "funnel")


def kept(app) -> list[tuple[date, str, int, int]]:
    with app.app_context():
        return [(k.day, k.zone, k.calls, k.paid_cents)
                for k in db.session.scalars(sa.select(ClosedDay).where(ClosedDay.day == DAY))]


def test_a_day_not_over_is_counted_from_its_calls_at_every_view(app, supervisor, monkeypatch):
    at(monkeypatch, EVENING)
    assert funnel(supervisor)[0] == ["Calls", "5"]
    add_call(app, "CA6")
    assert funnel(supervisor)[:2] == [["Calls", "6"], ["Identified", "4"]]
    assert kept(app) == []


def test_a_day_over_is_counted_once_and_kept(app, supervisor, monkeypatch):
    at(monkeypatch, NEXT_NOON)
    shown = funnel(supervisor)
    assert shown == [["Calls", "5"], ["Identified", "4"], ["Heard the balance", "3"], ["Reached card entry", "2"],
                     ["Paid", "1"], ["Ended paid or informed without an agent", "3"]]
    assert kept(app) == [(DAY, "America/New_York", 5, 119750)]
    add_call(app, "CA6")  # a row written after its day was over: what was counted stands
    assert funnel(supervisor) == shown
    assert len(kept(app)) == 1


def test_the_30_day_charts_take_kept_days_and_count_the_day_not_over(app, supervisor, monkeypatch):
    at(monkeypatch, NEXT_NOON)
    next_day = DAY + timedelta(days=1)
    with app.app_context():
        first = figures.trend(next_day)
        db.session.commit()
    assert first.days[-3:] == [DAY - timedelta(days=1), DAY, next_day]
    assert first.paid_cents[-3:] == [777, 119750, 0]  # the day before's $7.77, DAY's $1,197.50, nothing yet
    assert first.containment[-3:] == [None, 0.6, None]
    assert [k[0] for k in kept(app)] == [DAY]  # the day not over is not kept
    add_call(app, "CA6")
    with app.app_context():
        assert figures.trend(next_day).containment[-3:] == [None, 0.6, None]


@pytest.mark.parametrize("path, table", [(f"/ops/payments?date={DAY}", "payments"), (f"/ops/calls?date={DAY}", "calls"),
                                         ("/ops/messages", "messages")])
def test_a_list_reads_its_rows_in_the_same_few_queries_however_many_it_shows(app, supervisor, path, table):
    def statements() -> tuple[int, int]:
        """Rows the page lists, and the SQL statements it took."""
        seen: list[str] = []

        def note(_conn, _cursor, statement, *_rest) -> None:
            seen.append(statement)

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            html = supervisor.get(path).get_data(as_text=True)
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)
        return len(cells(html, table)), len(seen)

    few_rows, few_queries = statements()
    with app.app_context():
        account = db.session.scalar(sa.select(Account))
        for n in range(40):
            db.session.add(Payment(attempt_key=f"more:{n}", account_id=account.id, amount_cents=100 + n,
                                   status="declined", decline_code="card_declined", created_at=AT))
            db.session.add(CallSession(call_sid=f"CAmore{n}", state="SUMMARY", furthest="heard_balance",
                                       path=["WELCOME", "SUMMARY"], created_at=AT))
            db.session.add(OutboxMessage(dedupe_key=f"more:{n}", kind="reminder", to_number="+12025550143",
                                         body="Your bill", created_at=AT))
        db.session.commit()
    many_rows, many_queries = statements()
    assert many_rows == few_rows + 40
    assert many_queries == few_queries
