"""The outbox engine under each kind's policy: backoff, giving up, stale rows, unknown outcomes,
pass budgets, the run-forever loop, and concurrent workers on PostgreSQL.

Rows are SMS outbox rows delivered by a recording transport, so only the policy differs per case.
"""

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.agents import callbacks
from ivr.outbox import engine, texts
from ivr.outbox.models import OutboxMessage

NOW = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)
TEXTS = texts.policy()
CALLBACKS = callbacks.policy()
_keys = itertools.count()


class Recorder:
    """Records each delivery; each entry of ``script`` is returned (a Failure) or raised, in turn."""

    def __init__(self, *script: engine.Failure | Exception | None, on_deliver=None) -> None:
        self.script = list(script)
        self.delivered: list[int] = []
        self.on_deliver = on_deliver

    def describe(self, row: OutboxMessage) -> str:
        return f"row {row.id}"

    def deliver(self, session: Session, row: OutboxMessage, now: datetime) -> engine.Failure | None:
        self.delivered.append(row.id)
        if self.on_deliver:
            self.on_deliver()
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def queue(session: Session, **kw) -> OutboxMessage:
    n = next(_keys)
    values = {"created_at": NOW, "next_attempt_at": NOW} | kw
    row = OutboxMessage(dedupe_key=f"receipt:{n}", kind="receipt", to_number="+12125550123", body="text", **values)
    session.add(row)
    session.commit()
    return row


def reload(session: Session, row: OutboxMessage) -> OutboxMessage:
    return session.get(OutboxMessage, row.id, populate_existing=True)


def run(session, policy, transport, **kw) -> engine.Report:
    return engine.run_once(session, engine.Kind(OutboxMessage, policy, transport), **kw)


@pytest.mark.parametrize(
    ("policy", "gaps"),
    [
        (TEXTS, [60, 120, 240, 480, 960, 1920, 3600, 3600]),
        (CALLBACKS, [30, 60, 120, 240, 480, 600, 600, 600]),
    ],
    ids=["texts", "callbacks"],
)
def test_each_kind_backs_off_doubling_to_its_cap(session, policy, gaps):
    row = queue(session)
    transport = Recorder(*[engine.Failure("HTTP 503")] * len(gaps))
    seen, at = [], NOW
    for _ in gaps:
        assert run(session, policy, transport, now=at) == engine.Report(retried=1)
        row = reload(session, row)
        seen.append((row.next_attempt_at - at).total_seconds())
        at = row.next_attempt_at
    assert seen == gaps
    assert row.attempts == len(gaps)


@pytest.mark.parametrize(("policy", "hours"), [(TEXTS, 24), (CALLBACKS, 2)], ids=["texts", "callbacks"])
def test_each_kind_gives_up_at_its_deadline_with_the_last_try_on_it(session, policy, hours):
    row = queue(session)
    transport = Recorder(*[engine.Failure("HTTP 503")] * 200)
    at = NOW
    while reload(session, row).status == "queued":
        run(session, policy, transport, now=at)
        at = reload(session, row).next_attempt_at
    row = reload(session, row)
    assert row.status == "failed"
    assert row.last_error == f"gave up after {hours} hours: HTTP 503"
    assert at == NOW + timedelta(hours=hours)  # the last try was on the deadline itself
    tries = len(transport.delivered)
    assert run(session, policy, transport, now=at + timedelta(days=1)) == engine.Report()
    assert len(transport.delivered) == tries


def test_texts_fail_a_stale_sending_row_without_resending_it(session):
    stale = queue(session, status="sending", claimed_until=NOW - timedelta(seconds=1))
    transport = Recorder()
    assert run(session, TEXTS, transport, now=NOW) == engine.Report(failed=1)
    assert transport.delivered == []
    stale = reload(session, stale)
    assert (stale.status, stale.last_error, stale.attempts) == ("failed", engine.STALE_ERROR, 1)


def test_callbacks_send_a_stale_sending_row_again_in_the_same_pass(session):
    stale = queue(session, status="sending", claimed_until=NOW - timedelta(seconds=1))
    transport = Recorder()
    assert run(session, CALLBACKS, transport, now=NOW) == engine.Report(sent=1)
    assert transport.delivered == [stale.id]
    stale = reload(session, stale)
    assert (stale.status, stale.attempts) == ("sent", 2)  # the stopped worker's try and this one


@pytest.mark.parametrize("policy", [TEXTS, CALLBACKS], ids=["texts", "callbacks"])
def test_a_live_claim_is_left_alone(session, policy):
    live = queue(session, status="sending", claimed_until=NOW + timedelta(seconds=1))
    transport = Recorder()
    assert run(session, policy, transport, now=NOW) == engine.Report()
    assert transport.delivered == []
    assert reload(session, live).status == "sending"


def test_texts_fail_an_unexpected_error_for_a_person_to_check(session):
    row = queue(session)
    transport = Recorder(RuntimeError("boom"))
    assert run(session, TEXTS, transport, now=NOW) == engine.Report(failed=1)
    assert run(session, TEXTS, transport, now=NOW + timedelta(hours=1)) == engine.Report()
    row = reload(session, row)
    assert (row.status, row.last_error) == ("failed", "unexpected error while sending: RuntimeError")
    assert transport.delivered == [row.id]


def test_callbacks_retry_after_an_unexpected_error(session):
    row = queue(session)
    transport = Recorder(RuntimeError("boom"))
    assert run(session, CALLBACKS, transport, now=NOW) == engine.Report(retried=1)
    row = reload(session, row)
    assert (row.status, row.next_attempt_at) == ("queued", NOW + timedelta(seconds=30))
    assert run(session, CALLBACKS, transport, now=row.next_attempt_at) == engine.Report(sent=1)
    assert transport.delivered == [row.id, row.id]


def test_a_permanent_failure_is_not_retried(session):
    row = queue(session)
    transport = Recorder(engine.Failure("refused: 10.0.0.5 is not a public address", permanent=True))
    assert run(session, CALLBACKS, transport, now=NOW) == engine.Report(failed=1)
    assert run(session, CALLBACKS, transport, now=NOW + timedelta(hours=1)) == engine.Report()
    assert reload(session, row).last_error == "refused: 10.0.0.5 is not a public address"


def test_no_delivery_begins_after_the_pass_budget(session):
    rows = [queue(session) for _ in range(3)]
    clock = [0.0]

    def slow():  # each delivery takes 5 s of the 10 s budget
        clock[0] += 5

    transport = Recorder(on_deliver=slow)
    report = run(session, CALLBACKS, transport, now=NOW, clock=lambda: clock[0])
    assert (report.sent, report.more_due) == (2, True)
    assert transport.delivered == [rows[0].id, rows[1].id]
    last = reload(session, rows[2])
    assert (last.status, last.attempts, last.next_attempt_at, last.claimed_until) == ("queued", 0, NOW, None)


def test_a_full_batch_says_more_may_be_due(session):
    for _ in range(3):
        queue(session)
    assert run(session, TEXTS, Recorder(), now=NOW, limit=2).more_due is True
    assert run(session, TEXTS, Recorder(), now=NOW, limit=2).more_due is False


THREE_AM_NEW_YORK = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)


def test_quiet_hours_hold_only_rows_that_ask_for_them(session):
    held = queue(session, respect_quiet_hours=True, next_attempt_at=THREE_AM_NEW_YORK)
    free = queue(session, respect_quiet_hours=False, next_attempt_at=THREE_AM_NEW_YORK)
    transport = Recorder()
    assert run(session, TEXTS, transport, now=THREE_AM_NEW_YORK) == engine.Report(sent=1, held=1)
    assert transport.delivered == [free.id]
    held = reload(session, held)
    assert (held.status, held.attempts) == ("queued", 0)
    assert held.next_attempt_at == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)  # 8 am in New York


def test_a_policy_without_quiet_hours_never_holds(session):
    row = queue(session, respect_quiet_hours=True, next_attempt_at=THREE_AM_NEW_YORK)
    transport = Recorder()
    assert run(session, CALLBACKS, transport, now=THREE_AM_NEW_YORK) == engine.Report(sent=1)
    assert transport.delivered == [row.id]


def test_run_forever_pauses_only_when_no_pass_has_more_due():
    stop = threading.Event()
    reports = iter([engine.Report(sent=2, more_due=True), engine.Report(sent=1), engine.Report()])
    pauses, calls = [], []

    def a_pass():
        calls.append("texts")
        report = next(reports)
        if not report.total:
            stop.set()
        return report

    def failing_pass():
        calls.append("callbacks")
        raise RuntimeError("a bug in a pass")

    engine.run_forever(
        {"texts": a_pass, "callbacks": failing_pass}, poll_seconds=0.5, stop_event=stop, pause=pauses.append
    )
    # Round 1 had more due (no pause); rounds 2 and 3 paused; a failing pass never stops the loop.
    assert calls == ["texts", "callbacks"] * 3
    assert pauses == [0.5, 0.5]


def test_a_database_outage_is_one_line_a_round_waits_longer_each_round_and_the_worker_goes_on(caplog):
    stop = threading.Event()
    outcomes = [sa.exc.OperationalError("SELECT", {}, Exception('connection to server at "db1" failed'))] * 6
    outcomes += [engine.Report(sent=1), engine.Report()]
    pauses, sent = [], []

    def a_pass():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        sent.append(outcome.sent)
        if not outcomes:
            stop.set()
        return outcome

    with caplog.at_level("INFO", logger="ivr.outbox.engine"):
        engine.run_forever({"texts": a_pass}, poll_seconds=2, stop_event=stop, pause=pauses.append)
    # the database came back and the worker sent what was due
    assert sent == [1, 0]
    failed = [r for r in caplog.records if "trying again" in r.getMessage()]
    assert len(failed) == 6
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failed)
    assert 'connection to server at "db1" failed' in failed[0].getMessage()
    assert any("the database answers again" in r.getMessage() for r in caplog.records)
    # 2, 4, 8, 16, 30, 30 s while it is away; the usual 2 s once it is back
    assert pauses == [2, 4, 8, 16, 30, 30, 2, 2]


@pytest.mark.parametrize("policy", [TEXTS, CALLBACKS], ids=["texts", "callbacks"])
def test_concurrent_workers_on_postgresql_deliver_each_row_once(session, policy):
    engine_ = session.get_bind()
    if engine_.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are a PostgreSQL feature")
    rows = [queue(session) for _ in range(24)]
    delivered: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    class Shared(Recorder):
        def deliver(self, session, row, now):
            time.sleep(0.005)  # long enough for the other workers to try the same rows
            with lock:
                delivered.append(row.id)
            return None

    def worker():
        other = sa.create_engine(engine_.url, connect_args={"options": "-c lock_timeout=5000"})
        try:
            start.wait()
            with Session(other) as worker_session:
                for _ in range(10):
                    run(worker_session, policy, Shared(), now=NOW, limit=3)
        finally:
            other.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(delivered) == sorted(row.id for row in rows)
    assert set(session.scalars(sa.select(OutboxMessage.status))) == {"sent"}
