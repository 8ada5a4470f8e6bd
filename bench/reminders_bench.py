"""Benchmark: select and queue reminders for 100,000 accounts on PostgreSQL (target: under 30 s).

    .venv/bin/python bench/reminders_bench.py [--accounts 100000] [--database-url URL] [--keep]

Without --database-url it creates a throw-away database next to IVR_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) and drops it afterwards. It loads the accounts
(not timed), then times ``ivr reminders send`` as the command runs it (``selection.run``): the
selection query, the token for each text, and the reminder + outbox inserts. It prints the
figures; it is not a test.
"""

import argparse
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ivr.all_models  # noqa: E402,F401
from ivr import create_app  # noqa: E402
from ivr.extensions import db  # noqa: E402
from ivr.models import Account  # noqa: E402
from ivr.outbox.models import OutboxMessage  # noqa: E402
from ivr.reminders import selection  # noqa: E402
from ivr.reminders.models import Reminder, SmsOptOut  # noqa: E402

AREA_CODES = ["202", "212", "213", "305", "312", "415", "512", "617", "720", "808"]
ADMIN_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def throwaway_database(admin_url: str) -> tuple[str, object]:
    name = f"ivr_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def load_accounts(count: int, today) -> dict[str, int]:
    """Insert ``count`` accounts: most due within 3 days, some paid, closed or opted out."""
    rng = random.Random(5)
    mix = {"due": 0, "paid": 0, "closed": 0, "opted_out": 0, "later": 0}
    rows, opt_outs = [], []
    for n in range(count):
        phone = f"+1{rng.choice(AREA_CODES)}555{n % 10000:04d}"
        roll = rng.random()
        row = {
            "account_number": f"{n + 1:08d}",
            "name": f"Member {n}",
            "phone": phone,
            "balance_cents": rng.randint(500, 60000),
            "past_due_cents": 0,
            "due_date": today + timedelta(days=rng.randint(0, 3)),
            "language": "es" if roll < 0.2 else "en",
            "status": "active",
        }
        if roll < 0.03:
            row["balance_cents"], kind = 0, "paid"
        elif roll < 0.05:
            row["status"], kind = "closed", "closed"
        elif roll < 0.06:
            opt_outs.append(phone)
            kind = "opted_out"
        elif roll < 0.10:
            row["due_date"], kind = today + timedelta(days=12), "later"
        else:
            kind = "due"
        mix[kind] += 1
        rows.append(row)
    for start in range(0, len(rows), 10000):
        db.session.execute(sa.insert(Account), rows[start : start + 10000])
    now = datetime.now(UTC)
    db.session.execute(
        sa.insert(SmsOptOut),
        [
            {"phone": p, "opted_out": True, "keyword": "STOP", "changed_at": now}
            for p in sorted(set(opt_outs))
        ],
    )
    db.session.commit()
    return mix


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database to use")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away database")
    args = parser.parse_args()

    import os

    drop = None
    url = args.database_url
    if url is None:
        url, drop = throwaway_database(os.environ.get("IVR_TEST_POSTGRES_URL", ADMIN_URL_DEFAULT))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "PUBLIC_BASE_URL": "https://pay.example.coop",
            "ORG_NAME": "Riverbend Electric Cooperative",
            "PAYMENT_GATEWAY": "sandbox",
            "SMS_SENDER": "sandbox",
        }
    )
    try:
        with app.app_context():
            db.create_all()
            today = datetime.now(ZoneInfo(app.config["ORG_TIMEZONE"])).date()
            started = time.monotonic()
            mix = load_accounts(args.accounts, today)
            print(
                f"loaded {args.accounts:,} accounts in {time.monotonic() - started:.1f} s "
                f"({', '.join(f'{k} {v:,}' for k, v in mix.items())})"
            )
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()

            started = time.monotonic()
            selected = db.session.execute(
                selection.classify(today, days_before=3, past_due=False)
            ).all()
            select_seconds = time.monotonic() - started
            db.session.rollback()
            print(
                f"selection query alone: {len(selected):,} bills classified "
                f"in {select_seconds:.2f} s"
            )

            report = selection.run(days_before=3)
            queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
            reminders = db.session.scalar(sa.select(sa.func.count()).select_from(Reminder))
            print(f"ivr reminders send: {report.summary()}")
            print(
                f"  outbox rows {queued:,}, reminder rows {reminders:,}, "
                f"{report.queued / report.seconds:,.0f} texts/s, target < 30 s: "
                f"{'OK' if report.seconds < 30 else 'MISSED'}"
            )

            again = selection.run(days_before=3)
            print(f"re-run the same day: {again.summary()}")
    finally:
        if drop and not args.keep:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            drop()
        elif drop:
            print(f"kept database {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
