"""/ops at a co-op's scale: an hour of the day is counted once it has settled and kept; the hours still
going are counted at every view; a list reads its rows in the same few queries however many it shows
(docs/speed.md)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from ops_fixtures import AT, DAY, cells, seed_day, staff

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.ops import figures
from ivr.ops.models import KeptHour
from ivr.outbox.models import OutboxMessage

EVENING = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10 PM of DAY in New York: the day is not over
NEXT_NOON = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)  # noon the day after: every hour of DAY has settled


@pytest.fixture
def supervisor(app, client):
    seed_day(app)
    return staff(app, client, "supervisor")


def at(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(figures, "utcnow", lambda: moment)


def add_call(app, sid: str, began: datetime, *, going: bool = False) -> None:
    """A call of DAY that hung up before being identified (still going when ``going``)."""
    with app.app_context():
        db.session.add(CallSession(call_sid=sid, state="ENTER_ACCOUNT", path=["WELCOME", "ENTER_ACCOUNT"],
                                   created_at=began, ended_at=None if going else began + timedelta(seconds=40),
                                   call_status=None if going else "completed"))
        db.session.commit()


def end_call(app, sid: str, moment: datetime) -> None:
    """Twilio's status callback: the call is over."""
    with app.app_context():
        db.session.execute(sa.update(CallSession).where(CallSession.call_sid == sid)
                           .values(ended_at=moment, call_status="completed"))
        db.session.commit()


def funnel(client, day: date = DAY) -> list[list[str]]:
    return cells(client.get(f"/ops?date={day}").get_data(as_text=True), "funnel")


def kept(app, day: date = DAY) -> dict[int, tuple[int, dict[str, list[int]]]]:
    """The kept hours of ``day``: hour -> (calls, payments by channel)."""
    with app.app_context():
        return {k.hour: (k.calls, k.by_channel)
                for k in db.session.scalars(sa.select(KeptHour).where(KeptHour.day == day, KeptHour.zone == "America/New_York"))}


def test_the_hours_still_going_are_counted_at_every_view_and_the_settled_ones_kept(app, supervisor, monkeypatch):
    at(monkeypatch, EVENING)
    assert funnel(supervisor)[0] == ["Calls", "5"]
    assert sorted(kept(app)) == list(range(21))  # 9 PM ended at 10 PM: not settled yet
    assert kept(app)[9] == (5, {})  # the five calls of 9 AM; the payments were paid after 10 AM
    assert kept(app)[10] == (0, {"callback": [1, 4875], "ivr": [1, 10000]})
    add_call(app, "CA6", EVENING - timedelta(minutes=10), going=True)  # 9:50 PM, under way
    assert funnel(supervisor)[:2] == [["Calls", "6"], ["Identified", "4"]]
    at(monkeypatch, EVENING + timedelta(minutes=10))
    assert funnel(supervisor)[0] == ["Calls", "6"] and 21 not in kept(app)  # a call of 9 PM still going
    end_call(app, "CA6", EVENING + timedelta(minutes=11))
    assert funnel(supervisor)[0] == ["Calls", "6"] and kept(app)[21] == (1, {})


def test_a_day_over_is_kept_hour_by_hour_and_its_receipts_still_read_from_their_rows(app, supervisor, monkeypatch):
    at(monkeypatch, NEXT_NOON)
    shown = funnel(supervisor)
    assert shown == [["Calls", "5"], ["Identified", "4"], ["Heard the balance", "3"], ["Reached card entry", "2"],
                     ["Paid", "1"], ["Ended paid or informed without an agent", "3"]]
    hours = kept(app)
    assert sorted(hours) == list(range(24))
    assert sum(calls for calls, _ in hours.values()) == 5 and hours[13] == (0, {"agent": [1, 104875]})
    add_call(app, "CA6", AT)  # a row written in an hour already kept (a status callback six hours late)
    assert funnel(supervisor) == shown
    with app.app_context():  # the failed receipt, retried and delivered: receipts are read from their rows
        db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.status == "failed",
                                                          OutboxMessage.kind == "receipt").values(status="sent"))
        db.session.commit()
    page = supervisor.get(f"/ops?date={DAY}").get_data(as_text=True)
    assert cells(page, "receipts") == [["Sent", "2"], ["Failed", "0"], ["Held", "1"]]
    assert cells(page, "by-channel") == [["agent", "1", "$1,048.75"], ["callback", "1", "$48.75"], ["ivr", "1", "$100.00"]]


def test_the_30_day_charts_take_kept_hours_and_count_the_rest(app, supervisor, monkeypatch):
    at(monkeypatch, NEXT_NOON)
    next_day = DAY + timedelta(days=1)
    with app.app_context():
        first = figures.trend(next_day)
        db.session.commit()
    assert first.days[-3:] == [DAY - timedelta(days=1), DAY, next_day]
    assert first.paid_cents[-3:] == [777, 119750, 0]  # the day before's $7.77, DAY's $1,197.50, nothing yet
    assert first.containment[-3:] == [None, 0.6, None]
    assert sorted(kept(app, next_day)) == list(range(11))  # up to 11 AM; 11 AM ended at noon, not yet settled
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
