"""deploy/ivr.env.example and deploy/bin/ivr-posting-file: what an operator copies and what the billing system collects."""

import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import ConfigError, load_config
from ivr.models import Account, Payment
from ivr.money.models import MoneyMovement

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "bin" / "ivr-posting-file"
IVR = Path(sys.executable).parent / "ivr"


def _environment_file(path: Path) -> dict[str, str]:
    """NAME=value lines as systemd's EnvironmentFile= reads them (comments, blank lines, quotes)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[name.strip()] = value
    return values


EXAMPLE = _environment_file(ROOT / "deploy" / "ivr.env.example")
SECRETS = ("DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "STRIPE_SECRET_KEY",
           "STRIPE_WEBHOOK_SECRET", "SECRET_KEY")


def test_the_example_left_unedited_refuses_to_start_naming_every_secret_to_fill_in():
    with pytest.raises(ConfigError) as refused:
        load_config(EXAMPLE)
    for name in SECRETS:
        assert name in str(refused.value)


def test_the_example_filled_in_starts_in_production_behind_one_proxy():
    filled = {
        **EXAMPLE,
        "DATABASE_URL": "postgresql+psycopg://ivr:secret@10.0.0.20:5432/ivr",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_FROM_NUMBER": "+18005550100",
        "STRIPE_SECRET_KEY": "sk_live_" + "k" * 24,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 24,
        "SECRET_KEY": "s" * 43,
    }
    config = load_config(filled)
    assert config["PRODUCTION"] is True
    assert config["PUBLIC_BASE_URL"] == "https://pay.example.coop"
    assert config["TRUSTED_PROXIES"] == 1
    assert (config["PAYMENT_GATEWAY"], config["SMS_SENDER"]) == ("stripe", "twilio")
    assert config["ORG_NAME"] == "Riverbend Electric Cooperative"


def test_every_setting_in_the_example_is_documented():
    documented = " ".join(page.read_text() for page in (ROOT / "docs").glob("*.md"))
    for name in EXAMPLE:
        assert f"`{name}`" in documented, f"{name} is in ivr.env.example but no page in docs/ explains it"


# --- the posting file --------------------------------------------------------------------------


def _pay(session, when: datetime) -> str:
    """One approved payment whose money moved at ``when``; returns its confirmation number."""
    account = Account(account_number="12345001", name="Dana Member", phone="+12025550143", balance_cents=0)
    payment = Payment(attempt_key="CA1:8", confirmation_number="76303010", account=account, amount_cents=5000,
                      status="succeeded", stripe_payment_intent="pi_posting", card_brand="visa", card_last4="4242",
                      paid_at=when, channel="ivr")
    session.add_all([account, payment])
    session.flush()
    session.add(MoneyMovement(entry_id=f"pay_{payment.id}", type="payment", amount_cents=5000, payment_id=payment.id,
                              occurred_at=when))
    session.commit()
    return payment.confirmation_number


def _run(directory: Path, database_url: str, zone: str, *day: str) -> subprocess.CompletedProcess:
    directory.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": database_url, "ORG_TIMEZONE": zone, "IVR": str(IVR)}
    return subprocess.run(["sh", str(SCRIPT), str(directory), *day], env=env, capture_output=True, text=True,
                          timeout=120)


# Together these two zones differ from UTC's date at every hour of the day: a script that took
# "yesterday" in UTC would name the wrong day in one of them, whenever the test runs.
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_nightly_file_is_yesterday_in_the_co_op_s_time_zone(session, database_url, tmp_path, zone):
    yesterday = datetime.now(ZoneInfo(zone)).date() - timedelta(days=1)
    confirmation = _pay(session, datetime.combine(yesterday, time(12), ZoneInfo(zone)).astimezone(UTC))
    out = tmp_path / "postings"
    done = _run(out, database_url, zone)
    assert done.returncode == 0, done.stderr
    written = out / f"payments-{yesterday.isoformat()}.csv"
    assert done.stdout.strip() == str(written)
    assert sorted(p.name for p in out.iterdir()) == [written.name]  # nothing half-written left beside it
    header, row = written.read_text().splitlines()
    assert header.startswith("confirmation_number,account_number,amount,currency,paid_at")
    assert row.startswith(f"{confirmation},12345001,50.00,USD,")


def test_a_day_named_is_written_and_a_day_without_money_has_the_header_only(session, database_url, tmp_path):
    _pay(session, datetime(2026, 12, 2, 17, tzinfo=UTC))
    out = tmp_path / "postings"
    assert _run(out, database_url, "America/New_York", "2026-12-02").returncode == 0
    assert _run(out, database_url, "America/New_York", "2026-12-03").returncode == 0
    assert (out / "payments-2026-12-02.csv").read_text().splitlines()[1].startswith("76303010,12345001,50.00,")
    assert len((out / "payments-2026-12-03.csv").read_text().splitlines()) == 1


def test_a_failed_export_leaves_no_file_and_keeps_the_last_good_one(tmp_path):
    out = tmp_path / "postings"
    out.mkdir()
    good = out / "payments-2026-12-02.csv"
    good.write_text("confirmation_number,...\n76303010,...\n")
    no_tables = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    failed = _run(out, no_tables, "America/New_York", "2026-12-02")
    assert failed.returncode != 0
    assert sorted(p.name for p in out.iterdir()) == [good.name]
    assert good.read_text() == "confirmation_number,...\n76303010,...\n"
