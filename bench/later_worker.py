"""Benchmark: ``ivr worker``'s paying-later pass over a day of scheduled and autopay charges, on PostgreSQL.

    nice .venv/bin/python bench/later_worker.py [--charges 100000] [--baseline 2000] [--keep]

Creates a throw-away database next to ``IVR_TEST_POSTGRES_URL`` (default
postgresql+psycopg://postgres@127.0.0.1:5432/test), migrated as ``ivr db upgrade`` does, and starts
the Stripe stand-in of ``bench/stand_ins.py`` on loopback with no added latency: the app charges
through the real Stripe gateway (the Stripe SDK) pointed at it, so each charge is an HTTP request.

It loads accounts with a card on file (``pm_card_visa``; 1 in 100 ``pm_card_visa_chargeDeclined``)
and, due at the charge hour of two days: a tenth of ``--charges`` on the first, ``--charges`` on the
second, half scheduled payments and half autopay bills already noticed (the state two days after
the notices went). Then, each in a fresh process so its peak memory is its own:

1. **baseline**: ``--baseline`` plain one-off charges of a keyed card (channel ``ivr``) through the
   same charge step (``charge_token``), one after another, each committed: what one charge costs
   without the worker;
2. **worker, small day**: ``run_until_done`` (what ``ivr worker --once`` runs) over the first day;
3. **worker, full day**: the same over the second day.

For each it prints charges, seconds, charges per second and the process's peak RSS; a worker day
whose peak RSS grew with the number of charges would show it here. It checks that every due row
ended (paid or failed), that each was charged once (one payment per row, one PaymentIntent per
attempt key at the stand-in) and how long the full day would take against the day's window
(``SCHEDULED_CHARGE_HOUR`` to midnight). It exits 1 when a check fails. It is not a test: the
figures depend on the machine.
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ORG = "Riverbend Electric Cooperative"
DECLINE_EVERY = 100  # one card on file in this many declines
AMOUNT_CENTS = 2500
CHUNK = 10_000  # rows per INSERT while loading


def throwaway_database(admin_url: str) -> tuple[str, object]:
    """A new empty database next to ``admin_url`` and the function that drops it."""
    name = f"ivr_bench_later_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def make_app(url: str, stripe_port: int):
    """The product's app on the bench database, charging through the Stripe SDK at the stand-in."""
    from ivr import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": url,
        "PUBLIC_BASE_URL": "https://pay.example.coop",
        "ORG_NAME": ORG,
        "PAYMENT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_bench_later",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "SMS_SENDER": "sandbox",
    })


def days(app) -> tuple[date, date]:
    """The two charge days: yesterday and today in the co-op's time zone."""
    from ivr.later import rules

    with app.app_context():
        today = rules.local_day(datetime.now(UTC))
    return today - timedelta(days=1), today


def load(app, charges: int, baseline: int) -> None:
    """Accounts with a card on file; the two days' scheduled payments and noticed autopay bills."""
    from ivr.extensions import db
    from ivr.later import rules
    from ivr.later.models import NOTICED, SAVED_CARD, SCHEDULED, AutopayBill, AutopayEnrollment, ScheduledPayment
    from ivr.models import Account
    from ivr.money.models import SavedCard

    small_day, full_day = days(app)
    per_kind = charges // 2  # accounts with a scheduled payment, and as many on autopay
    accounts = 2 * per_kind + baseline
    now = datetime.now(UTC)
    with app.app_context():
        insert = lambda model, rows: [db.session.execute(sa.insert(model), rows[i:i + CHUNK])  # noqa: E731
                                      for i in range(0, len(rows), CHUNK)]
        insert(Account, [{
            "account_number": f"{n + 1:08d}", "name": f"Member {n}", "phone": f"+1202555{n % 10000:04d}",
            "balance_cents": 10_000_000, "past_due_cents": 0, "due_date": full_day, "language": "en",
            "status": "active", "created_at": now, "updated_at": now,
        } for n in range(accounts)])
        ids = db.session.scalars(sa.select(Account.id).order_by(Account.id)).all()
        later_ids, autopay_ids = ids[:per_kind], ids[per_kind:2 * per_kind]
        insert(SavedCard, [{
            "account_id": account_id, "stripe_customer": f"cus_bench_{account_id}",
            "stripe_payment_method": "pm_card_visa_chargeDeclined" if n % DECLINE_EVERY == DECLINE_EVERY - 1
            else "pm_card_visa",
            "card_brand": "visa", "card_last4": "4242", "saved_at": now, "consent_channel": "ivr",
            "consent_language": "en", "consent_words": "To save this card for next time, press 1.",
        } for n, account_id in enumerate(later_ids + autopay_ids)])
        insert(AutopayEnrollment, [{
            "account_id": account_id, "active": True, "enrolled_at": now - timedelta(days=30),
            "consent_channel": "ivr", "consent_language": "en", "consent_words": "To agree and turn on autopay, press 1.",
        } for account_id in autopay_ids])
        enrolment = dict(db.session.execute(sa.select(AutopayEnrollment.account_id, AutopayEnrollment.id)).all())
        for day, share in ((small_day, per_kind // 10), (full_day, per_kind)):
            charge_at = rules.charge_moment(day)
            insert(ScheduledPayment, [{
                "account_id": account_id, "amount_cents": AMOUNT_CENTS, "pay_on": day, "charge_at": charge_at,
                "status": SCHEDULED, "next_attempt_at": charge_at, "attempts": 0, "card_source": SAVED_CARD,
                "card_brand": "visa", "card_last4": "4242", "language": "en",
                "created_key": f"bench:{day.isoformat()}:{account_id}", "created_at": now - timedelta(days=3),
            } for account_id in later_ids[:share]])
            insert(AutopayBill, [{
                "account_id": account_id, "due_date": day, "enrollment_id": enrolment[account_id],
                "amount_cents": AMOUNT_CENTS, "status": NOTICED, "charge_at": charge_at,
                "next_attempt_at": charge_at, "attempts": 0, "created_at": charge_at - timedelta(days=2),
            } for account_id in autopay_ids[:share]])
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


def child(args: argparse.Namespace) -> None:
    """One measured phase in this fresh process; prints its figures as JSON."""
    from ivr.extensions import db

    app = make_app(args.database_url, args.stripe_port)
    small_day, full_day = days(app)
    with app.app_context():
        from ivr.later import rules, worker

        started = time.monotonic()
        if args.child == "baseline":
            from ivr.models import Account
            from ivr.money.charge import charge_token

            ids = db.session.scalars(sa.select(Account.id).order_by(Account.id.desc()).limit(args.baseline)).all()
            for n, account_id in enumerate(ids):
                account = db.session.get(Account, account_id)
                charge_token(account, AMOUNT_CENTS, f"CAbench{n:06d}:1", "pm_card_visa", channel="ivr",
                             call_sid=f"CAbench{n:06d}", language="en", caller=None)
                db.session.commit()  # the caller commits the settle (the call's answer)
                db.session.expunge_all()
            done = {"charges": len(ids)}
        else:
            day = small_day if args.child == "small" else full_day
            report = worker.run_until_done(rules.charge_moment(day) + timedelta(minutes=1))
            done = {"charges": report.paid + report.failed, "paid": report.paid, "failed": report.failed,
                    "retried": report.retried, "skipped": report.skipped}
    seconds = time.monotonic() - started
    # ru_maxrss is in KiB on Linux: the peak of this process, imports and app included.
    print(json.dumps({**done, "seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      / 1024}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stand_in(port: int) -> subprocess.Popen:
    """bench/stand_ins.py with no latency: Stripe's PaymentIntents on loopback."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "stand_ins.py"), "--port", str(port),
                             "--stripe-latency", "0,0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_held", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the Stripe stand-in did not start")


def run_phase(name: str, url: str, port: int, baseline: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--database-url", url, "--stripe-port",
                          str(port), "--baseline", str(baseline)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(url: str, port: int, expected_rows: int) -> list[str]:
    """Every due row ended, with one payment each and one PaymentIntent per attempt key."""
    problems = []
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table in ("scheduled_payments", "autopay_bills"):
            left = conn.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE status NOT IN ('paid', 'failed')"))
            if left:
                problems.append(f"{left} {table} rows did not end paid or failed")
        ended = conn.scalar(sa.text("SELECT (SELECT count(*) FROM scheduled_payments) + (SELECT count(*) FROM autopay_bills)"))
        if ended != expected_rows:
            problems.append(f"{ended} rows, expected {expected_rows}")
        twice = conn.scalar(sa.text("SELECT count(*) FROM (SELECT attempt_key FROM payments GROUP BY attempt_key "
                                    "HAVING count(*) > 1) t"))
        if twice:
            problems.append(f"{twice} attempt keys with more than one payment")
        paid_rows = conn.scalar(sa.text("SELECT count(*) FROM scheduled_payments WHERE status = 'paid' AND payment_id IS NULL"))
        if paid_rows:
            problems.append(f"{paid_rows} paid scheduled payments without their payment")
    engine.dispose()
    counts = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_counts", timeout=60).read())
    keys = [intent["key"] for intent in counts["intents"]]
    if len(keys) != len(set(keys)):
        problems.append("the stand-in made more than one PaymentIntent for one key")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=100_000, help="charges due on the full day (half autopay)")
    parser.add_argument("--baseline", type=int, default=2_000, help="plain one-off charges for the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away database")
    parser.add_argument("--child", choices=("baseline", "small", "full"), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--stripe-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from ivr.migrate import upgrade

    url, drop = throwaway_database(os.environ.get("IVR_TEST_POSTGRES_URL", ADMIN_URL_DEFAULT))
    port = free_port()
    stand_in = start_stand_in(port)
    try:
        upgrade(url)  # what `ivr db upgrade` runs
        app = make_app(url, port)
        started = time.monotonic()
        load(app, args.charges, args.baseline)
        per_kind = args.charges // 2
        small = 2 * (per_kind // 10)
        print(f"loaded {2 * per_kind + args.baseline:,} accounts, {small:,} charges due on day one and "
              f"{2 * per_kind:,} on day two (half scheduled, half autopay; 1 card in {DECLINE_EVERY} declines) "
              f"in {time.monotonic() - started:.0f} s; Stripe: bench/stand_ins.py on loopback, no latency")
        print(f"{'run':<34} {'charges':>8} {'seconds':>8} {'per second':>11} {'peak RSS':>10}")
        results = {}
        for name, label in (("baseline", "baseline: one-off charges"), ("small", "worker: day one (a tenth)"),
                            ("full", "worker: day two (all)")):
            r = results[name] = run_phase(name, url, port, args.baseline)
            extra = f"  ({r['paid']:,} paid, {r['failed']:,} declined and texted)" if "paid" in r else ""
            print(f"{label:<34} {r['charges']:>8,} {r['seconds']:>8.1f} {r['charges'] / r['seconds']:>11.1f} "
                  f"{r['peak_rss_mib']:>7.0f} MiB{extra}", flush=True)
        with app.app_context():
            window_hours = 24 - int(app.config.get("SCHEDULED_CHARGE_HOUR", 9))
        full = results["full"]
        rate = full["charges"] / full["seconds"]
        print(f"worker vs one-off charges: {rate / (results['baseline']['charges'] / results['baseline']['seconds']):.2f}x; "
              f"100,000 charges at this rate take {100_000 / rate / 3600:.2f} h of the day's "
              f"{window_hours} h window (the charge hour to midnight), one worker")
        print(f"peak RSS, day two vs day one: {full['peak_rss_mib'] - results['small']['peak_rss_mib']:+.0f} MiB "
              f"for {full['charges'] - results['small']['charges']:,} more charges")
        problems = check(url, port, 2 * (per_kind + per_kind // 10))
        if full["charges"] != 2 * per_kind or results["small"]["charges"] != small:
            problems.append("the worker did not end every due row")
        for problem in problems:
            print("PROBLEM:", problem)
        return 1 if problems else 0
    finally:
        stand_in.kill()
        stand_in.wait()
        if args.keep:
            print("kept", url)
        else:
            drop()


if __name__ == "__main__":
    sys.exit(main())
