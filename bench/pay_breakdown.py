"""Where the ``<Pay>`` result webhook's time goes, beside a menu step's, in-process on PostgreSQL.

    .venv/bin/python bench/pay_breakdown.py [--calls 60] [--idle 0.1]

Creates a throw-away database (``ivr_paybench``), then places ``--calls`` whole calls through
Flask's test client on the real app (sandbox gateway, so Stripe's own time is not in it), pausing
``--idle`` seconds before each webhook as between a caller's keypresses. Prints the median and p90
of the ``<Pay>`` webhook and of a menu step (the same run's baseline), then, from a second pass
under cProfile, the share of the ``<Pay>`` webhook spent in each part: COMMITs, other SQL, the
gateway's charge, and the rest (Flask, the ORM, TwiML).
"""

import argparse
import cProfile
import logging
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from call_load import TOKEN, add_members, create_database, member_phone  # noqa: E402

from ivr.twilio.adapter import compute_signature  # noqa: E402

BASE = "https://bench.example.coop"


def place_call(client, i: int, idle: float, timings: dict[str, list[float]], profile: cProfile.Profile | None):
    """One call to an approved payment; the pay webhook (and a menu step) timed."""
    phone = member_phone(i)
    common = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "b" * 32, "From": phone,
              "To": "+18005550100", "Direction": "inbound", "CallStatus": "in-progress", "ApiVersion": "2010-04-01"}

    def post(kind, path, params):
        time.sleep(idle)
        sig = compute_signature(BASE + path, params, TOKEN)
        if profile is not None and kind == "pay":
            profile.enable()
        _in_pay["on"] = kind == "pay"
        started = time.perf_counter()
        reply = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        took = (time.perf_counter() - started) * 1000
        _in_pay["on"] = False
        if profile is not None and kind == "pay":
            profile.disable()
        timings[kind].append(took)
        assert reply.status_code == 200, reply.data
        return reply.data.decode()

    def action(twiml, default):
        import re

        found = re.search(r'<(?:Gather|Pay)[^>]* action="([^"]+)"', twiml) or re.search(r"<Redirect[^>]*>([^<]+)<", twiml)
        return found.group(1).replace(BASE, "").replace("&amp;", "&") if found else default

    twiml = post("voice", "/twilio/voice", common)
    twiml = post("step", action(twiml, "/twilio/voice/step?seq=1"), common)
    for digits in ("1", phone[-4:], "2", "1", "1"):
        twiml = post("step", action(twiml, "/twilio/voice/step"), {**common, "Digits": digits})
    pay = {**common, "Result": "success", "PaymentToken": "pm_card_visa", "PaymentMethod": "credit-card",
           "PaymentCardNumber": "xxxxxxxxxxxx4242", "PaymentCardType": "visa", "ExpirationDate": "1229",
           "SecurityCode": "***", "PaymentCardPostalCode": "30301"}
    twiml = post("pay", action(twiml, "/twilio/voice/pay?seq=8"), pay)
    assert "approved" in twiml, twiml


_in_pay = {"on": False}


def watch_statements(app) -> dict[str, list[float]]:
    """Time every SQL statement the ``<Pay>`` webhook sends (both pools), by its first words."""
    import sqlalchemy as sa

    import ivr.extensions as extensions
    from ivr.extensions import db

    found: dict[str, list[float]] = {}
    with app.app_context():
        engines = set(db.engines.values())
    engines |= {v for v in vars(extensions).values() if isinstance(v, sa.engine.Engine)}

    def before(conn, cursor, statement, params, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def after(conn, cursor, statement, params, context, executemany):
        if _in_pay["on"]:
            key = " ".join(statement.split())[:90]
            found.setdefault(key, []).append((time.perf_counter() - conn.info["bench_started"]) * 1000)

    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--idle", type=float, default=0.1)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # a line per call and payment would drown the figures
    url = create_database("ivr_paybench")
    from ivr.migrate import upgrade

    upgrade(url)
    add_members(url, args.calls * 2 + 10)
    from ivr import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PUBLIC_BASE_URL": BASE, "TWILIO_AUTH_TOKEN": TOKEN,
                      "TWILIO_ACCOUNT_SID": "AC" + "b" * 32, "PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"})
    client = app.test_client()
    statements = watch_statements(app)
    warm: dict[str, list[float]] = {"voice": [], "step": [], "pay": []}
    for i in range(5):  # compiled SQL, prompts, pools: not measured
        place_call(client, i, args.idle, warm, None)
    statements.clear()
    timings: dict[str, list[float]] = {"voice": [], "step": [], "pay": []}
    for i in range(5, 5 + args.calls):
        place_call(client, i, args.idle, timings, None)
    by_statement = dict(statements)
    statements.clear()
    profile = cProfile.Profile()
    profiled: dict[str, list[float]] = {"voice": [], "step": [], "pay": []}
    for i in range(5 + args.calls, 5 + 2 * args.calls):
        place_call(client, i, args.idle, profiled, profile)

    def line(name, values):
        values = sorted(values)
        p90 = values[int(len(values) * 0.9) - 1]
        print(f"  {name:<10} {len(values):>5} {statistics.median(values):>8.2f} {p90:>8.2f}")

    print(f"{args.calls} calls in-process on PostgreSQL, {args.idle:g} s idle before each webhook")
    print(f"  {'webhook':<10} {'n':>5} {'p50 ms':>8} {'p90 ms':>8}")
    line("menu step", timings["step"])
    line("<Pay>", timings["pay"])

    stats = pstats.Stats(profile)
    total = sum(profiled["pay"])

    def spent(match) -> float:
        # Time inside functions matching ``match`` (top-level entries only: no double counting).
        seconds = 0.0
        for (filename, _, name), (_, _, _, cumulative, callers) in stats.stats.items():
            if match(filename, name) and not any(match(f, n) for (f, _, n) in callers):
                seconds += cumulative
        return seconds * 1000

    commits = spent(lambda f, n: n == "commit" and "psycopg" in f)
    sql = spent(lambda f, n: n == "execute" and "psycopg" in f and "cursor" in f)
    gateway = spent(lambda f, n: n == "charge" and "sandbox" in f)
    print(f"<Pay> webhook under cProfile, {len(profiled['pay'])} requests, {total / len(profiled['pay']):.2f} ms each:")
    for name, ms in (("COMMIT (durable)", commits), ("other SQL statements", sql), ("sandbox charge", gateway),
                     ("the rest: Flask, ORM, TwiML", total - commits - sql - gateway)):
        print(f"  {name:<30} {ms / len(profiled['pay']):>7.2f} ms  {100 * ms / total:>5.1f}%")
    print("<Pay> webhook's SQL, by statement (unprofiled pass), ms per request:")
    for text, took in sorted(by_statement.items(), key=lambda kv: -sum(kv[1]))[:14]:
        print(f"  {sum(took) / args.calls:>6.2f}  x{len(took) / args.calls:.0f}  {text}")
    commit_calls = sum(cc for (f, _, n), (cc, *_rest) in stats.stats.items() if n == "commit" and "psycopg" in f)
    execs = sum(cc for (f, _, n), (cc, *_rest) in stats.stats.items()
                if n == "execute" and "psycopg" in f and "cursor" in f)
    print(f"  per request: {commit_calls / len(profiled['pay']):.1f} COMMITs, {execs / len(profiled['pay']):.1f} statements")


if __name__ == "__main__":
    main()
