"""`ivr reminders send`: which bills get a text, once per bill, and how the worker delivers them."""

# Fixtures are imported from reminder_fixtures, so their names reappear as arguments.
# ruff: noqa: F811

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers import BASE
from reminder_fixtures import MEMBER, NOON_UTC, clock, fake_twilio, text_in, token_from  # noqa: F401

from ivr.cli import main
from ivr.extensions import db
from ivr.models import Account
from ivr.outbox.models import OutboxMessage
from ivr.outbox.sms import SandboxSmsSender
from ivr.outbox.texts import run_once
from ivr.reminders import selection
from ivr.reminders.models import Reminder
from prompts import sms


def run(app, **options):
    with app.app_context():
        return selection.run(**options)


def outbox(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def texted_accounts(app) -> set[int]:
    return {m.account_id for m in outbox(app)}


def test_due_window_is_today_to_today_plus_n_in_the_org_time_zone(app, make_account, clock):
    # 03:00 UTC on Dec 3 is still Dec 2 in New York (ORG_TIMEZONE): "today" is Dec 2.
    clock.set(datetime(2026, 12, 3, 3, 0, tzinfo=UTC))
    past = make_account(account_number="1001", due_date=date(2026, 12, 1))
    today = make_account(account_number="1002", due_date=date(2026, 12, 2))
    last_day = make_account(account_number="1003", due_date=date(2026, 12, 5))
    too_far = make_account(account_number="1004", due_date=date(2026, 12, 6))

    report = run(app, days_before=3)

    assert texted_accounts(app) == {today, last_day}
    assert (report.selected, report.queued) == (2, 2)
    assert past not in texted_accounts(app) and too_far not in texted_accounts(app)


def test_days_before_option_widens_the_window(app, make_account, clock):
    near = make_account(account_number="1001", due_date=date(2026, 12, 4))
    week = make_account(account_number="1002", due_date=date(2026, 12, 10))
    run(app, days_before=1)
    assert texted_accounts(app) == {near}
    run(app, days_before=7)
    assert texted_accounts(app) == {near, week}


def test_only_active_accounts_with_a_balance_a_phone_and_no_opt_out_are_texted(
    app, client, make_account, clock
):
    due = date(2026, 12, 5)
    good = make_account(account_number="1001", phone="+12025550101", due_date=due)
    make_account(account_number="1002", phone="+12025550102", due_date=due, status="closed")
    make_account(
        account_number="1003", phone="+12025550103", due_date=due, status="no_ivr_payments"
    )
    make_account(account_number="1004", phone="+12025550104", due_date=due, balance_cents=0)
    make_account(account_number="1005", phone="+12025550105", due_date=due, balance_cents=-500)
    make_account(account_number="1006", phone="", due_date=due)
    make_account(account_number="1007", phone="+12025550107", due_date=due)
    make_account(account_number="1008", phone="+12025550108", due_date=None)
    assert text_in(client, "STOP", from_="+12025550107") == (200, [])

    report = run(app)

    assert texted_accounts(app) == {good}
    assert (
        report.selected == 7
    )  # every account with a bill in the window (not the one without a due date)
    assert dict(report.skipped) == {"inactive": 2, "nothing_due": 2, "no_phone": 1, "opted_out": 1}


def test_rerun_the_same_day_queues_nothing_new(app, make_account, clock):
    make_account(account_number="1001")
    make_account(account_number="1002", phone="+12025550102")
    assert run(app).queued == 2
    clock.advance(hours=5)

    again = run(app)

    assert again.queued == 0
    assert again.skipped["already_reminded"] == 2
    assert len(outbox(app)) == 2


def test_a_new_due_date_is_a_new_bill(app, make_account, clock):
    account_id = make_account(due_date=date(2026, 12, 5))
    run(app)
    with app.app_context():
        db.session.get(Account, account_id).due_date = date(2027, 1, 5)
        db.session.commit()
    clock.set(datetime(2027, 1, 3, 15, 0, tzinfo=UTC))

    assert run(app).queued == 1
    assert [m.dedupe_key for m in outbox(app)] == [
        f"reminder:{account_id}:2026-12-05",
        f"reminder:{account_id}:2027-01-05",
    ]


def test_two_runs_racing_for_the_same_bills_queue_each_text_once(app, make_account, clock):
    make_account(account_number="1001")
    make_account(account_number="1002", phone="+12025550102")
    with app.app_context():
        cfg = selection.settings()
        bills = [
            selection.Bill(a.id, a.phone, a.language, a.balance_cents, a.due_date)
            for a in db.session.scalars(sa.select(Account))
        ]
        # Both runs read the same bills before either wrote: the unique constraint decides.
        first = selection._queue_chunk(cfg, bills, "upcoming", NOON_UTC, None)
        second = selection._queue_chunk(cfg, bills, "upcoming", NOON_UTC, None)
        reminders = db.session.scalar(sa.select(sa.func.count()).select_from(Reminder))
    assert (first, second, reminders) == (2, 0, 2)
    assert len(outbox(app)) == 2


def test_past_due_run_picks_only_bills_whose_due_date_has_passed(app, make_account, clock):
    late = make_account(account_number="1001", due_date=date(2026, 11, 20), past_due_cents=12345)
    make_account(account_number="1002", phone="+12025550102", due_date=date(2026, 12, 3))
    run(app, past_due=True)
    (message,) = outbox(app)
    assert message.account_id == late
    assert message.body.startswith("Riverbend Electric Cooperative: $123.45 was due Nov 20.")


def test_limit_caps_the_texts_queued(app, make_account, clock):
    for n in range(5):
        make_account(account_number=f"100{n}", phone=f"+1202555010{n}")
    report = run(app, limit=2)
    assert (report.queued, report.skipped["limit"]) == (2, 3)
    assert run(app).queued == 3  # the rest on the next run


def test_text_in_the_members_language_with_link_and_opt_out(app, make_account, clock):
    make_account(account_number="1001", language="en", balance_cents=4550)
    make_account(account_number="1002", phone="+12025550102", language="es", balance_cents=123456)
    run(app)
    english, spanish = outbox(app)
    assert english.body == (
        "Riverbend Electric Cooperative: $45.50 is due Dec 5. Get a call to pay now: "
        f"{BASE}/r/{token_from(english.body)} Reply STOP to opt out"
    )
    assert spanish.body.startswith(
        "Riverbend Electric Cooperative: su saldo de $1,234.56 vence el 5 dic."
    )
    assert f"{BASE}/r/" in spanish.body and spanish.body.endswith(
        "Responda STOP para no recibir avisos"
    )


def test_reminders_go_to_the_phone_on_file_and_respect_quiet_hours(app, make_account, clock):
    account_id = make_account()
    run(app)
    (message,) = outbox(app)
    assert (message.kind, message.to_number, message.account_id) == ("reminder", MEMBER, account_id)
    assert message.respect_quiet_hours is True


@pytest.mark.parametrize("amount", [5, 4550, 1234567])
def test_english_reminder_fits_one_sms_segment(app, make_account, clock, amount):
    make_account(balance_cents=amount, due_date=date(2026, 12, 15))  # two-digit day
    run(app, days_before=14)
    (message,) = outbox(app)
    assert sms.gsm7_length(message.body) is not None, "not GSM-7: would be sent as UCS-2"
    assert sms.fits_one_segment(message.body), (len(message.body), message.body)


@pytest.mark.parametrize("past_due", [False, True])
def test_spanish_reminders_stay_in_the_gsm7_alphabet(app, make_account, clock, past_due):
    make_account(language="es", due_date=date(2026, 11, 20) if past_due else date(2026, 12, 5))
    run(app, past_due=past_due)
    (message,) = outbox(app)
    assert sms.gsm7_length(message.body) is not None, message.body


# --- delivery through the worker: quiet hours in the member's own time zone ----------------------

NUMBERS = {
    "new_york": "+12125550101",
    "los_angeles": "+12135550102",
    "honolulu": "+18085550103",
    "puerto_rico": "+17875550104",
}


def deliver(app):
    """One `ivr worker --once` pass at the (monkeypatched) current time; returns who got texts."""
    sender = SandboxSmsSender()
    with app.app_context():
        run_once(db.session, sender, default_tz=app.config["ORG_TIMEZONE"])
    return {to for to, _body, _sid in sender.sent}


def test_reminders_wait_for_8am_in_each_members_time_zone(app, make_account, clock):
    for n, phone in enumerate(NUMBERS.values()):
        make_account(account_number=f"100{n}", phone=phone)
    clock.set(datetime(2026, 12, 3, 11, 0, tzinfo=UTC))  # 6 am New York, 7 am Puerto Rico
    run(app)

    assert deliver(app) == set()
    clock.set(datetime(2026, 12, 3, 12, 30, tzinfo=UTC))  # 7:30 NY, 8:30 PR
    assert deliver(app) == {NUMBERS["puerto_rico"]}
    clock.set(datetime(2026, 12, 3, 13, 5, tzinfo=UTC))  # 8:05 NY, 5:05 LA
    assert deliver(app) == {NUMBERS["new_york"]}
    clock.set(datetime(2026, 12, 3, 16, 5, tzinfo=UTC))  # 8:05 LA, 6:05 Honolulu
    assert deliver(app) == {NUMBERS["los_angeles"]}
    clock.set(datetime(2026, 12, 3, 18, 5, tzinfo=UTC))  # 8:05 Honolulu
    assert deliver(app) == {NUMBERS["honolulu"]}


def test_reminder_queued_in_the_evening_is_held_overnight(app, make_account, clock):
    make_account(phone=NUMBERS["new_york"])
    clock.set(datetime(2026, 12, 4, 2, 30, tzinfo=UTC))  # 9:30 pm in New York
    run(app)
    assert deliver(app) == set()
    clock.set(datetime(2026, 12, 4, 12, 59, tzinfo=UTC))  # 7:59 am
    assert deliver(app) == set()
    clock.set(datetime(2026, 12, 4, 13, 1, tzinfo=UTC))
    assert deliver(app) == {NUMBERS["new_york"]}


def test_held_reminder_is_dropped_when_the_bill_is_paid_first(app, make_account, clock):
    account_id = make_account(phone=NUMBERS["new_york"])
    clock.set(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))  # 1 am
    run(app)
    assert deliver(app) == set()
    with app.app_context():
        db.session.get(Account, account_id).balance_cents = 0
        db.session.commit()
    clock.set(datetime(2026, 12, 3, 14, 0, tzinfo=UTC))
    assert deliver(app) == set()
    assert outbox(app)[0].status == "dropped"


# --- opt-out and opt-in ------------------------------------------------------------------------


def test_stop_stops_reminders_and_start_resumes_them_from_the_current_bill(
    app, client, make_account, clock
):
    make_account()
    assert text_in(client, "STOP") == (200, [])
    assert run(app).skipped["opted_out"] == 1
    assert outbox(app) == []

    assert text_in(client, "START") == (200, [])
    assert run(app).queued == 1  # the current bill, still in its window, is reminded


def test_opt_out_is_per_phone_number(app, client, make_account, clock):
    make_account(account_number="1001", phone="+12025550101")
    make_account(account_number="1002", phone="+12025550101")
    other = make_account(account_number="1003", phone="+12025550103")
    text_in(client, "stop", from_="+12025550101")
    run(app)
    assert texted_accounts(app) == {other}


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_env(app_config, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", app_config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("ORG_NAME", app_config["ORG_NAME"])


def test_cli_dry_run_prints_the_texts_and_queues_nothing(app, make_account, clock, cli_env):
    make_account(account_number="1001")
    make_account(account_number="1002", phone="+12025550102", balance_cents=0)

    result = CliRunner().invoke(main, ["reminders", "send", "--dry-run"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("…0143\ten\tRiverbend Electric Cooperative: $123.45 is due Dec 5.")
    assert "+12025550143" not in result.output
    assert lines[-1].startswith("Dry run: would queue 1 reminder for 2 bills in the window; skipped 1 (1 nothing due) in ")
    assert outbox(app) == []
    assert run(app).queued == 1  # the dry run claimed nothing


def test_cli_send_queues_and_summarises_by_reason(app, make_account, clock, cli_env):
    make_account(account_number="1001")
    make_account(account_number="1002", phone="+12025550102", status="closed")

    first = CliRunner().invoke(main, ["reminders", "send", "--days-before", "3"])
    second = CliRunner().invoke(main, ["reminders", "send"])

    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("Queued 1 reminder for 2 bills in the window; skipped 1 (1 account not active) in ")
    assert second.stdout.startswith(
        "Queued 0 reminders for 2 bills in the window; skipped 2 (1 account not active, 1 already reminded) in "
    )
    # Said once: the summary is not also logged beside it.
    assert first.output.count("in the window") == 1
    assert len(outbox(app)) == 1


def test_reminder_run_logs_no_full_phone_or_account_number(
    app, make_account, clock, caplog, cli_env
):
    make_account(account_number="98765001")
    caplog.set_level("DEBUG")
    result = CliRunner().invoke(main, ["reminders", "send", "--dry-run"])
    run(app)
    assert result.exit_code == 0
    assert "+12025550143" not in caplog.text + result.output
    assert "98765001" not in caplog.text + result.output
