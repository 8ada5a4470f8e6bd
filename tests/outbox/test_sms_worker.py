"""The outbox worker: receipts go once, failures back off and give up, quiet hours hold texts."""

import itertools
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.models import Account
from ivr.outbox.engine import STALE_UNRESOLVED, Report, lock_due, run_forever
from ivr.outbox.models import OutboxMessage
from ivr.outbox.texts import run_once
from ivr.twilio.adapter import SentMessage, TwilioApiError

NY = "+12125550123"
LA = "+14155552671"
PUERTO_RICO = "+17875550123"
GUAM = "+16715550123"
NOW = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)  # noon in New York, 9 am in Los Angeles
_keys = itertools.count()


class ScriptedSender:
    """Records every text; each entry in ``script`` is raised (an exception) or ignored, in turn."""

    def __init__(self, *script: Exception | None, accepted: list[tuple[str, str]] | None = None,
                 lookup_error: Exception | None = None) -> None:
        self.script = list(script)
        self.sent: list[tuple[str, str]] = []
        self.accepted = accepted or []  # (to, body) that Twilio's Messages list holds
        self.lookup_error = lookup_error

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        if self.lookup_error is not None:
            raise self.lookup_error
        return "SM" + "f" * 32 if (to, body) in self.accepted else None

    def send(self, to: str, body: str) -> SentMessage:
        self.sent.append((to, body))
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, Exception):
            raise outcome
        return SentMessage(sid=f"SM{len(self.sent):032d}", status="queued")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def server_error() -> TwilioApiError:
    return TwilioApiError(500, 20500, "Internal Server Error")


def make_account(session: Session, phone: str = NY, balance_cents: int = 5000) -> Account:
    account = Account(
        account_number=f"10{session.scalar(sa.select(sa.func.count(Account.id))) or 0:04d}",
        name="Member",
        phone=phone,
        balance_cents=balance_cents,
    )
    session.add(account)
    session.commit()
    return account


def queue(session: Session, kind: str = "receipt", to: str = NY, **kw) -> OutboxMessage:
    values = {
        "dedupe_key": f"{kind}:{next(_keys)}",
        "body": f"{kind} text",
        "created_at": NOW,
        "next_attempt_at": NOW,
        "respect_quiet_hours": kind == "reminder",
    } | kw
    row = OutboxMessage(kind=kind, to_number=to, **values)
    session.add(row)
    session.commit()
    return row


def reload(session: Session, row: OutboxMessage) -> OutboxMessage:
    return session.get(OutboxMessage, row.id, populate_existing=True)


def test_receipt_sent_once(session):
    row = queue(session)
    sender = ScriptedSender()
    assert run_once(session, sender, now=NOW) == Report(sent=1)
    assert run_once(session, sender, now=NOW + timedelta(minutes=5)) == Report()
    assert sender.sent == [(NY, "receipt text")]
    row = reload(session, row)
    assert (row.status, row.provider_sid, row.sent_at) == ("sent", "SM" + "1".zfill(32), NOW)


def test_retried_after_500_then_sent_exactly_once(session):
    row = queue(session)
    sender = ScriptedSender(server_error())

    assert run_once(session, sender, now=NOW) == Report(retried=1)
    row = reload(session, row)
    assert (row.status, row.attempts, row.error_code) == ("queued", 1, 20500)
    assert row.next_attempt_at == NOW + timedelta(seconds=60)

    assert run_once(session, sender, now=NOW + timedelta(seconds=59)) == Report()
    assert run_once(session, sender, now=NOW + timedelta(seconds=60)) == Report(sent=1)
    assert run_once(session, sender, now=NOW + timedelta(hours=2)) == Report()
    assert len(sender.sent) == 2
    assert reload(session, row).status == "sent"


def test_backoff_doubles_from_60s_to_at_most_an_hour(session):
    row = queue(session)
    sender = ScriptedSender(*[server_error() for _ in range(9)])
    gaps = []
    at = NOW
    for _ in range(9):
        run_once(session, sender, now=at)
        row = reload(session, row)
        gaps.append((row.next_attempt_at - at).total_seconds())
        at = row.next_attempt_at
    assert gaps == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_gives_up_after_24_hours(session):
    row = queue(session)
    sender = ScriptedSender(*[server_error() for _ in range(100)])
    at = NOW
    while True:
        run_once(session, sender, now=at)
        row = reload(session, row)
        if row.status != "queued":
            break
        assert row.next_attempt_at - row.created_at <= timedelta(hours=24)
        at = row.next_attempt_at
    assert row.status == "failed"
    assert "24 hours" in row.last_error
    # The last try happened at the 24-hour mark, not before and not long after.
    assert at == NOW + timedelta(hours=24)
    tries = len(sender.sent)
    assert run_once(session, sender, now=at + timedelta(days=2)) == Report()
    assert len(sender.sent) == tries


def test_opted_out_21610_recorded_and_not_retried(session):
    row = queue(session)
    sender = ScriptedSender(
        TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
    )
    assert run_once(session, sender, now=NOW) == Report(failed=1)
    row = reload(session, row)
    assert (row.status, row.error_code) == ("failed", 21610)
    assert row.last_error == "Attempt to send to unsubscribed recipient"
    assert run_once(session, sender, now=NOW + timedelta(days=1)) == Report()
    assert len(sender.sent) == 1


def test_receipt_refused_as_not_a_mobile_goes_once_to_the_phone_on_file(session):
    account = make_account(session, phone=LA)
    row = queue(session, to=NY, account_id=account.id)
    not_mobile = TwilioApiError(400, 21614, "'To' number is not a valid mobile number")
    sender = ScriptedSender(not_mobile, None)
    assert run_once(session, sender, now=NOW) == Report(failed=1)
    assert run_once(session, sender, now=NOW) == Report(sent=1)  # the worker's next pass
    assert sender.sent == [(NY, "receipt text"), (LA, "receipt text")]
    assert (reload(session, row).status, reload(session, row).error_code) == ("failed", 21614)
    assert run_once(session, sender, now=NOW + timedelta(days=1)) == Report()
    assert len(sender.sent) == 2


def test_receipt_refused_as_not_a_mobile_with_no_other_phone_is_not_resent(session):
    account = make_account(session, phone=NY)
    queue(session, to=NY, account_id=account.id)
    sender = ScriptedSender(TwilioApiError(400, 21614, "'To' number is not a valid mobile number"))
    assert run_once(session, sender, now=NOW) == Report(failed=1)
    assert run_once(session, sender, now=NOW + timedelta(days=1)) == Report()
    assert len(sender.sent) == 1


@pytest.mark.parametrize(
    ("number", "now", "opens"),
    [
        (NY, utc(2025, 1, 15, 8, 0), utc(2025, 1, 15, 13, 0)),  # 3 am -> 8 am Eastern
        (LA, utc(2025, 1, 15, 13, 0), utc(2025, 1, 15, 16, 0)),  # 8 am Eastern, 5 am Pacific
        (PUERTO_RICO, utc(2025, 1, 15, 9, 0), utc(2025, 1, 15, 12, 0)),  # UTC-4
        (GUAM, utc(2025, 1, 15, 13, 0), utc(2025, 1, 15, 22, 0)),  # 11 pm in Guam (UTC+10)
    ],
)
def test_reminder_held_until_8am_local(session, number, now, opens):
    account = make_account(session, phone=number)
    row = queue(
        session, "reminder", to=number, account_id=account.id, created_at=now, next_attempt_at=now
    )
    sender = ScriptedSender()

    assert run_once(session, sender, now=now) == Report(held=1)
    row = reload(session, row)
    assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 0, opens)

    assert run_once(session, sender, now=opens - timedelta(seconds=1)) == Report()
    assert run_once(session, sender, now=opens) == Report(sent=1)
    assert sender.sent == [(number, "reminder text")]


def test_reminder_paid_before_window_opens_is_dropped(session):
    account = make_account(session, phone=NY, balance_cents=5000)
    three_am = utc(2025, 1, 15, 8, 0)
    row = queue(
        session, "reminder", account_id=account.id, created_at=three_am, next_attempt_at=three_am
    )
    sender = ScriptedSender()
    assert run_once(session, sender, now=three_am).held == 1

    account.balance_cents = 0  # the member paid by phone at 7 am
    session.commit()

    eight_am = utc(2025, 1, 15, 13, 0)
    assert run_once(session, sender, now=eight_am) == Report(dropped=1)
    assert reload(session, row).status == "dropped"
    assert sender.sent == []


@pytest.mark.parametrize("kind", ["receipt", "reply"])
def test_receipts_and_member_requested_texts_not_held_at_3am(session, kind):
    three_am = utc(2025, 1, 15, 8, 0)
    queue(session, kind, created_at=three_am, next_attempt_at=three_am, respect_quiet_hours=False)
    sender = ScriptedSender()
    assert run_once(session, sender, now=three_am) == Report(sent=1)
    assert len(sender.sent) == 1


@pytest.mark.parametrize(
    ("state_windows", "expected"),
    [(None, Report(sent=1)), ({"FL": (8, 20)}, Report(held=1))],
)
def test_state_window_setting_holds_florida_reminder(session, state_windows, expected):
    miami = "+13055550123"
    at_830pm = utc(2025, 1, 16, 1, 30)
    account = make_account(session, phone=miami)
    queue(session, "reminder", to=miami, account_id=account.id, next_attempt_at=at_830pm)
    report = run_once(session, ScriptedSender(), now=at_830pm, state_windows=state_windows)
    assert report == expected


def test_a_stale_text_twilio_accepted_is_recorded_sent_and_not_sent_again(session, caplog):
    stale = queue(session, status="sending", claimed_until=NOW - timedelta(minutes=1))
    live = queue(session, status="sending", claimed_until=NOW + timedelta(minutes=1))
    sender = ScriptedSender(accepted=[(NY, stale.body)])
    with caplog.at_level(logging.WARNING, logger="ivr.outbox.engine"):
        assert run_once(session, sender, now=NOW) == Report(sent=1)
    assert sender.sent == []
    stale, live = reload(session, stale), reload(session, live)
    assert (stale.status, stale.provider_sid, stale.attempts) == ("sent", "SM" + "f" * 32, 1)
    assert live.status == "sending"  # another worker is still on it
    assert "…0123" in caplog.text and NY not in caplog.text


def test_a_stale_text_twilio_never_got_is_sent_once_in_the_same_pass(session):
    stale = queue(session, status="sending", claimed_until=NOW - timedelta(minutes=1))
    sender = ScriptedSender()
    assert run_once(session, sender, now=NOW) == Report(sent=1)
    assert sender.sent == [(NY, stale.body)]
    assert run_once(session, sender, now=NOW + timedelta(minutes=10)) == Report()
    assert sender.sent == [(NY, stale.body)]
    assert reload(session, stale).status == "sent"


def test_a_stale_text_is_asked_about_again_while_twilio_cannot_answer_and_failed_only_at_the_deadline(session):
    stale = queue(session, status="sending", claimed_until=NOW - timedelta(minutes=1))
    down = ScriptedSender(lookup_error=server_error())
    assert run_once(session, down, now=NOW) == Report()
    assert down.sent == [] and reload(session, stale).status == "sending"  # nobody sends it meanwhile

    back = ScriptedSender(accepted=[(NY, stale.body)])
    assert run_once(session, back, now=NOW + timedelta(minutes=5)) == Report(sent=1)
    assert back.sent == [] and reload(session, stale).status == "sent"

    never = queue(session, status="sending", claimed_until=NOW - timedelta(minutes=1))
    assert run_once(session, down, now=NOW + timedelta(hours=25)) == Report(failed=1)
    never = reload(session, never)
    assert (never.status, never.last_error) == ("failed", STALE_UNRESOLVED)


def test_unexpected_sender_error_fails_without_resending(session):
    row = queue(session)
    sender = ScriptedSender(RuntimeError("boom"))
    assert run_once(session, sender, now=NOW) == Report(failed=1)
    assert run_once(session, sender, now=NOW + timedelta(hours=1)) == Report()
    assert reload(session, row).status == "failed"
    assert len(sender.sent) == 1


def test_row_is_committed_as_sending_before_twilio_is_called(session):
    row = queue(session)
    engine = session.get_bind()
    seen = []

    class PeekingSender(ScriptedSender):
        def send(self, to, body):
            with Session(engine) as other:  # another connection sees only committed state
                seen.append(other.get(OutboxMessage, row.id).status)
            return super().send(to, body)

    run_once(session, PeekingSender(), now=NOW)
    assert seen == ["sending"]


@pytest.fixture
def fake_clock():
    state = {"t": 1000.0, "sleeps": []}

    def clock():
        return state["t"]

    def sleep(seconds):
        state["sleeps"].append(seconds)
        state["t"] += seconds

    return state, clock, sleep


def test_rate_limit_paces_sends(session, fake_clock):
    state, clock, sleep = fake_clock
    for n in range(3):
        queue(session, dedupe_key=f"receipt:{n}")
    sender = ScriptedSender()
    report = run_once(session, sender, now=NOW, rate_per_second=2, clock=clock, sleep=sleep)
    assert report == Report(sent=3)
    assert state["sleeps"] == [0.5, 0.5]


def test_429_backs_off_the_rest_of_the_batch(session):
    rows = [queue(session, next_attempt_at=NOW - timedelta(seconds=3 - n)) for n in range(3)]
    sender = ScriptedSender(TwilioApiError(429, 20429, "Too Many Requests"))
    assert run_once(session, sender, now=NOW) == Report(retried=1, held=2)
    assert len(sender.sent) == 1
    first, *rest = (reload(session, r) for r in rows)
    assert (first.status, first.attempts) == ("queued", 1)
    assert first.next_attempt_at == NOW + timedelta(seconds=60)
    for row in rest:
        assert (row.status, row.attempts) == ("queued", 0)
        assert row.next_attempt_at == NOW + timedelta(seconds=30)


def test_logs_mask_phone_numbers(session, caplog):
    queue(session, to=LA)
    queue(session, to=NY, dedupe_key="second")
    sender = ScriptedSender(TwilioApiError(400, 21211, "The 'To' number +14155552671 is not valid"))
    with caplog.at_level(logging.DEBUG):
        run_once(session, sender, now=NOW)
    assert "…2671" in caplog.text and "…0123" in caplog.text
    assert LA not in caplog.text and NY not in caplog.text
    query = sa.select(OutboxMessage.last_error).where(OutboxMessage.to_number == LA)
    stored = session.scalar(query)
    assert stored == "The 'To' number …2671 is not valid"


def test_run_forever_sends_then_stops(session):
    queue(session)
    stop = threading.Event()

    class StoppingSender(ScriptedSender):
        def send(self, to, body):
            stop.set()
            return super().send(to, body)

    sender = StoppingSender()
    make_session = sessionmaker(session.get_bind(), expire_on_commit=False)

    def texts_pass():
        with make_session() as worker_session:
            return run_once(worker_session, sender)

    worker = threading.Thread(
        target=run_forever,
        args=({"texts": texts_pass},),
        kwargs={"poll_seconds": 0.05, "stop_event": stop},
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert sender.sent == [(NY, "receipt text")]
    assert session.scalar(sa.select(OutboxMessage.status)) == "sent"


def test_two_workers_never_take_the_same_row_on_postgresql(session):
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are a PostgreSQL feature")
    rows = [queue(session, dedupe_key=f"receipt:{n}", to=f"+1212555010{n}") for n in range(3)]

    # Worker A has locked two rows and not yet committed its claim.
    claimed_by_a = lock_due(session, OutboxMessage, NOW, limit=2)
    assert [r.id for r in claimed_by_a] == [rows[0].id, rows[1].id]

    # Worker B must skip them rather than wait (a 2 s lock timeout turns waiting into an error).
    other = sa.create_engine(engine.url, connect_args={"options": "-c lock_timeout=2000"})
    try:
        with Session(other, expire_on_commit=False) as session_b:
            sender_b = ScriptedSender()
            assert run_once(session_b, sender_b, now=NOW) == Report(sent=1)
            assert sender_b.sent == [("+12125550102", "receipt text")]
    finally:
        session.rollback()
        other.dispose()
    statuses = {r.id: reload(session, r).status for r in rows}
    assert statuses == {rows[0].id: "queued", rows[1].id: "queued", rows[2].id: "sent"}


def test_a_worker_that_died_mid_send_loses_no_receipt_and_sends_none_twice_against_twilios_api(session):
    """Through the real Twilio SDK and a loopback Twilio: one receipt went before the crash, one did not."""
    from ivr.softphone.twilio_api import TwilioStandIn as FakeTwilio

    from ivr.outbox.sms import TwilioSmsSender
    from ivr.twilio.adapter import TwilioRest

    account_sid = "AC" + "e" * 32
    with FakeTwilio(account_sid) as fake:
        sender = TwilioSmsSender(TwilioRest(account_sid, "token", from_number="+15005550006", api_base=fake.url))
        went = queue(session, body="Receipt 11112222", status="sending", claimed_until=NOW - timedelta(minutes=1))
        lost = queue(session, body="Receipt 33334444", status="sending", claimed_until=NOW - timedelta(minutes=1))
        sender.send(NY, went.body)  # the dead worker got this one to Twilio, then died before committing

        assert run_once(session, sender, now=NOW) == Report(sent=2)

        assert [m["Body"] for m in fake.messages] == ["Receipt 11112222", "Receipt 33334444"]
        assert {reload(session, went).status, reload(session, lost).status} == {"sent"}
