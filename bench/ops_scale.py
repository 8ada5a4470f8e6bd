"""Scale benchmark: the operations console and the posting file over two years of a co-op's line in PostgreSQL.

    .venv/bin/python bench/ops_scale.py [--payments 1000000] [--calls 5000000] [--repeat 20] [--reuse]

Creates its own database (``ivr_scale``; ``--reuse`` keeps a loaded one), makes the schema with the
project's migrations (the Alembic call ``ivr db upgrade`` makes) and fills it with server-side SQL:
a few thousand accounts; about ``--payments`` payment attempts over ``--days`` days through the ivr,
callback and agent channels (declines with their reasons, retries on the same call, a few refunds,
partial refunds, disputes and won disputes, each with its money movements, refund request and audit
entry); a receipt in the outbox for every payment and a reminder a month for every account; and
``--calls`` calls with the funnel columns (``furthest``, ``path``) as the product writes them. Every
15th is a due date; three due dates are busy days with 3% of the payments each. Then VACUUM ANALYZE.

It signs in as a supervisor through the real sign-in route (Flask's test client on the real app) and
times the pages staff use, each ``--repeat`` times after ``--warmup`` untimed requests: median, p95,
the database's share and whether it is under the 300 ms budget. Last, ``ivr payments export --date``
runs as a subprocess for a day with nothing, an ordinary day and the busiest day (``--exports all``
adds the whole history): rows, seconds and peak RSS, to show memory does not grow with the day.

It exits 1 when a page does not answer 200 or an export's rows are not the day's money movements;
a page over the budget is reported, not an error (the figures depend on the machine).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows import State  # noqa: E402
from ivr.voice.call_rows import FUNNEL  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# Databases this script must never create, fill or drop: the call-load benchmark's and the tests'.
NOT_OURS = {"ivr_bench", "test", "postgres", "template0", "template1"}
BUDGET_MS = 300
ORG = "Riverbend Electric Cooperative"
LINE = "+18005550100"
SUPERVISOR = "Scale Supervisor"
LOADED = "loaded by bench/ops_scale.py:"
BUSY_SHARE = 0.03  # of all payments, on each busy day
DUE_DAY = 15  # every bill is due on the 15th

# Local hour of day -> relative volume (members pay in the morning and after work).
HOUR_WEIGHTS = [1, 0.5, 0.3, 0.3, 0.4, 1, 3, 6, 9, 10, 10, 9, 9, 8, 8, 8, 8, 9, 9, 8, 6, 4, 3, 2]
DECLINE_CODES = [("card_declined", 38), ("insufficient_funds", 30), ("expired_card", 12), ("incorrect_cvc", 10),
                 ("do_not_honor", 5), ("processing_error", 3), ("lost_card", 2)]
BRANDS = [("visa", 55), ("mastercard", 28), ("amex", 9), ("discover", 8)]
RECEIPT_ERRORS = [(30003, "Unreachable destination handset"), (30005, "Unknown destination handset"),
                  (30006, "Landline or unreachable carrier"), (21610, "Attempt to send to unsubscribed recipient")]

# Calls that did not pay: weight, channel, last state, furthest, path, and the kind of answer the row
# last saved (``last_twiml``): a menu, a goodbye, a transfer to an agent, or <Pay> for a hang-up there.
OTHER_CALLS = [
    (3, "ivr", "WELCOME", None, ["WELCOME"], "gather"),
    (6, "ivr", "ENTER_ACCOUNT", None, ["WELCOME", "ENTER_ACCOUNT"], "gather"),
    (3, "ivr", "NO_INPUT", None, ["WELCOME", "ENTER_ACCOUNT", "NO_INPUT"], "goodbye"),
    (4, "ivr", "GOODBYE", None, ["WELCOME", "ENTER_ACCOUNT", "ENTER_LAST4", "ENTER_ACCOUNT", "ENTER_LAST4",
                                 "ENTER_ACCOUNT", "ENTER_LAST4", "NO_MATCH", "GOODBYE"], "goodbye"),
    (2, "ivr", "AGENT", None, ["WELCOME", "ENTER_ACCOUNT", "ENTER_LAST4", "ENTER_ACCOUNT", "ENTER_LAST4",
                               "ENTER_ACCOUNT", "ENTER_LAST4", "NO_MATCH", "AGENT"], "dial"),
    (6, "ivr", "AGENT", None, ["WELCOME", "AGENT"], "dial"),
    (2, "ivr", "OFFICE_ONLY", "identified", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "OFFICE_ONLY"], "goodbye"),
    (22, "ivr", "SUMMARY", "heard_balance", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY"], "gather"),
    (8, "ivr", "SUMMARY", "heard_balance", ["WELCOME", "ENTER_ACCOUNT", "ENTER_LAST4", "SUMMARY"], "gather"),
    (5, "ivr", "NO_INPUT", "heard_balance", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY", "NO_INPUT"],
     "goodbye"),
    (8, "ivr", "NOTHING_DUE", "heard_balance", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "NOTHING_DUE"], "goodbye"),
    (3, "ivr", "CONFIRM_AMOUNT", "heard_balance", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY",
                                                   "ENTER_AMOUNT", "CONFIRM_AMOUNT"], "gather"),
    (8, "ivr", "AGENT", "heard_balance", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY", "AGENT"], "dial"),
    (4, "ivr", "HUNG_UP", "card_entry", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY", "CARD_ENTRY",
                                         "HUNG_UP"], "pay"),
    (1, "ivr", "SUMMARY", "card_entry", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY", "CARD_ENTRY",
                                         "SUMMARY"], "gather"),
    (0.3, "ivr", "GOODBYE", "card_entry", ["WELCOME", "OFFER_CALLER_ID", "ENTER_LAST4", "SUMMARY", "CARD_ENTRY",
                                           "PROCESSOR_DOWN", "GOODBYE"], "goodbye"),
    (1, "callback", "CALLBACK_WELCOME", "heard_balance", ["CALLBACK_WELCOME"], "gather"),
    (0.5, "callback", "NOTHING_DUE", "heard_balance", ["NOTHING_DUE"], "goodbye"),
]
IDENTIFIED = {"identified", "heard_balance", "card_entry", "paid"}

SAY_EN = '<Say language="en-US" voice="Polly.Joanna-Neural">'
SAY_ES = '<Say language="es-MX" voice="Polly.Mia-Neural">'
HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
TWIML = {
    ("goodbye", "en"): f"{HEAD}{SAY_EN}Thank you for calling {ORG}. Goodbye.</Say><Hangup /></Response>",
    ("goodbye", "es"): f"{HEAD}{SAY_ES}Gracias por llamar a {ORG}. Adiós.</Say><Hangup /></Response>",
    ("gather", "en"): f'{HEAD}<Gather action="https://ivr.example.coop/twilio/voice/step?seq=4" actionOnEmptyResult="true"'
                      f' input="dtmf" numDigits="1" timeout="6">{SAY_EN}Your balance is one hundred twenty-three dollars'
                      " and forty-five cents, due Monday, December fifteenth. To pay the full balance, press 1. To pay"
                      " another amount, press 2.</Say></Gather></Response>",
    ("gather", "es"): f'{HEAD}<Gather action="https://ivr.example.coop/twilio/voice/step?seq=4" actionOnEmptyResult="true"'
                      f' input="dtmf" numDigits="1" timeout="6">{SAY_ES}Su saldo es de ciento veintitrés dólares con'
                      " cuarenta y cinco centavos, con vencimiento el lunes quince de diciembre. Para pagar el saldo"
                      " completo, oprima 1. Para pagar otra cantidad, oprima 2.</Say></Gather></Response>",
    ("dial", "en"): f"{HEAD}{SAY_EN}Connecting you with a member services agent.</Say><Dial>+18005550199</Dial></Response>",
    ("dial", "es"): f"{HEAD}{SAY_ES}Le comunicamos con un agente.</Say><Dial>+18005550199</Dial></Response>",
    ("return", "en"): f"{HEAD}{SAY_EN}Connecting you back to your agent.</Say><Dial>+18005550199</Dial></Response>",
    ("return", "es"): f"{HEAD}{SAY_ES}Le comunicamos de nuevo con su agente.</Say><Dial>+18005550199</Dial></Response>",
}
# The card step's answer is long (every <Pay> prompt in the caller's language): rows that end there carry it.
_PROMPTS = [("payment-card-number", "Please enter your card number, then press pound."),
            ("expiration-date", "Please enter the expiration date as two digits for the month and two for the year."),
            ("security-code", "Please enter the security code on your card."),
            ("postal-code", "Please enter the billing ZIP code for the card.")]
TWIML[("pay", "en")] = TWIML[("pay", "es")] = (
    f"{HEAD}{SAY_EN}You are paying one hundred twenty-three dollars and forty-five cents. We'll now ask for your card."
    " Your card details are handled securely and are not heard by anyone.</Say>"
    '<Pay action="https://ivr.example.coop/twilio/voice/pay?seq=5" description="Account ending 5001" input="dtmf"'
    ' language="en-US" maxAttempts="3" paymentConnector="Default" postalCode="true" securityCode="true"'
    ' statusCallback="https://ivr.example.coop/twilio/voice/pay-status" timeout="10" tokenType="payment-method"'
    ' validCardTypes="visa mastercard amex discover">'
    + "".join(f'<Prompt attempt="1" for="{f}">{SAY_EN}{words}</Say></Prompt><Prompt attempt="2 3" for="{f}">{SAY_EN}'
              f"That wasn't valid. {words}</Say></Prompt>" for f, words in _PROMPTS)
    + f'<Prompt for="payment-processing">{SAY_EN}Please wait while we process your card.</Say></Prompt></Pay></Response>'
)


def _check_shapes() -> None:
    """The made-up calls use only the flow's states and the funnel's stages, so they read as the product's own."""
    states = {s.value for s in State}
    for _, _, state, furthest, path, _ in OTHER_CALLS:
        assert state in states and set(path) <= states, path
        assert furthest is None or furthest in FUNNEL, furthest
        assert path[-1] == state


# --- SQL helpers ------------------------------------------------------------------------------------------


def sql_text(value: str) -> str:
    """A SQL string literal (our own constants only)."""
    return "'" + value.replace("'", "''") + "'"


def sql_array(values: list, cast: str) -> str:
    """A SQL array literal, subscripted from 1."""
    items = ",".join(sql_text(v) if isinstance(v, str) else ("NULL" if v is None else str(v)) for v in values)
    return f"(ARRAY[{items}]::{cast}[])"


def pick(weighted: list[tuple[object, float]], cast: str) -> str:
    """A SQL expression choosing one of the values by weight (one ``random()`` per evaluation)."""
    total = sum(w for _, w in weighted)
    bounds, running = [], 0.0
    for _, weight in weighted[:-1]:
        running += weight / total
        bounds.append(round(running, 6))
    values = sql_array([v for v, _ in weighted], cast)
    return f"{values}[1 + width_bucket(random(), ARRAY[{','.join(map(str, bounds))}]::float8[])]"


# --- the database -------------------------------------------------------------------------------------


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def prepare(args: argparse.Namespace) -> str:
    """The benchmark's database, migrated and loaded (kept as it is with ``--reuse`` when already loaded)."""
    if args.database in NOT_OURS:
        raise SystemExit(f"{args.database}: not this benchmark's database; choose another --database")
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": args.database})
        if exists and not args.reuse:
            conn.execute(sa.text(f'DROP DATABASE "{args.database}" WITH (FORCE)'))
        if not exists or not args.reuse:
            conn.execute(sa.text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()
    url = database_url(args.database)
    from ivr.migrate import upgrade

    upgrade(url)  # what `ivr db upgrade` runs
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        # The load's last act is this note, so a load that stopped half way is not taken for a loaded database.
        loaded = conn.scalar(sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                             {"n": args.database})
    if loaded and loaded.startswith(LOADED):
        print(f"{args.database}: reusing the data {loaded}")
    elif loaded is None and args.reuse and _has_rows(engine):
        raise SystemExit(f"{args.database} holds a load that did not finish; run without --reuse")
    else:
        load(engine, args)
    engine.dispose()
    return url


def _has_rows(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM payments)")))


class Step:
    """Print how long each part of the load took."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def __call__(self, label: str, sql: str, params: dict | None = None) -> int:
        started = time.perf_counter()
        rows = self.conn.execute(sa.text(sql), params or {}).rowcount
        self.conn.commit()
        print(f"  {label:<44} {rows:>11,} rows {time.perf_counter() - started:>7.1f} s", flush=True)
        return rows


def day_plan(args: argparse.Namespace, units: int, calls: int) -> list[tuple[date, int, int]]:
    """(local day, payment calls, other calls) for each day: weekdays busier, due dates far busier, three very busy."""
    last = datetime.now(ZoneInfo(args.timezone)).date() - timedelta(days=1)  # the last whole day
    days = [last - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    due = [d for d in days if d.day == DUE_DAY]
    # The latest due date (within the 30 days Today's charts cover), one about six months and one a year before.
    busy = {due[-1], due[max(0, len(due) - 7)], due[max(0, len(due) - 13)]} if due else set()

    def weight(d: date) -> float:
        w = 0.6 if d.weekday() >= 5 else 1.0
        if d.day == DUE_DAY:
            w *= 3
        elif d.day in (DUE_DAY - 1, DUE_DAY + 1):
            w *= 1.8
        elif d.day == 1:  # bills go out
            w *= 1.4
        return w

    busy_units = round(units * BUSY_SHARE)
    rest_units = units - busy_units * len(busy)
    total = sum(weight(d) for d in days if d not in busy)
    plan = []
    for d in days:
        if d in busy:
            share = BUSY_SHARE
            n = busy_units
        else:
            share = weight(d) / total * (1 - BUSY_SHARE * len(busy))
            n = round(rest_units * weight(d) / total)
        plan.append((d, n, max(0, round(calls * share) - n)))
    return plan


# Payment attempts per payment call: the declines before (0, 1 or 2) and how the call's last attempt ended.
DECLINES = [(0, 86), (1, 10), (2, 4)]
FINALS = [("succeeded", 92.8), ("none", 7), ("error", 0.2)]  # none: gave up after a decline
FATES = [("kept", 98.85), ("refunded", 0.6), ("partial", 0.3), ("disputed", 0.17), ("dispute_won", 0.08)]


def attempts_per_call() -> float:
    """Expected payment rows per payment call, so ``--payments`` is met on average."""
    p_declines = {d: w / 100 for d, w in DECLINES}
    p_final = {f: w / 100 for f, w in FINALS}
    expected = 0.0
    for declines, pd in p_declines.items():
        for final, pf in p_final.items():
            expected += pd * pf * (max(1, declines) if final == "none" else declines + 1)
    return expected


def load(engine: sa.Engine, args: argparse.Namespace) -> None:
    """Fill the schema the migrations made, server-side, the way two years of the product would have."""
    _check_shapes()
    started = time.perf_counter()
    tz = sql_text(args.timezone)
    units = round(args.payments / attempts_per_call())
    plan = day_plan(args, units, args.calls)
    end = datetime.combine(plan[-1][0] + timedelta(days=1), datetime.min.time(), ZoneInfo(args.timezone))
    end_utc = end.astimezone(UTC).replace(tzinfo=None)
    hours = pick(list(enumerate(HOUR_WEIGHTS)), "int")
    accounts = args.accounts
    print(f"loading {args.database}: ~{args.payments:,} payments, {args.calls:,} calls, {accounts:,} accounts, "
          f"{args.days} days to {plan[-1][0]}")
    with engine.connect() as conn:
        step = Step(conn)
        conn.execute(sa.text("SET synchronous_commit = off"))
        conn.execute(sa.text("SET work_mem = '256MB'"))
        conn.execute(sa.text("SET maintenance_work_mem = '512MB'"))
        conn.execute(sa.text("SELECT setseed(:s)"), {"s": args.seed})
        rebuild = _drop_indexes(conn, ["accounts", "payments", "call_sessions", "money_movements", "outbox_messages",
                                       "refund_requests", "agent_audit_log"])
        conn.commit()

        step("accounts", f"""
            INSERT INTO accounts (account_number, name, phone, balance_cents, past_due_cents, due_date, email,
                                  language, status, created_at, updated_at)
            SELECT (10000000 + (i::bigint * 2654435761) % 89999999)::text,
                   'Member ' || i,
                   '+1' || (ARRAY['202','301','410','540','703','804'])[1 + i % 6]
                        || lpad(((2000000 + i::bigint * 7919) % 8000000 + 2000000)::text, 7, '0'),
                   (random() * 30000)::int, CASE WHEN random() < 0.08 THEN (random() * 9000)::int ELSE 0 END,
                   :due, NULL, CASE WHEN random() < 0.14 THEN 'es' ELSE 'en' END,
                   {pick([('active', 97), ('no_ivr_payments', 2), ('closed', 1)], 'text')},
                   :first, :first
            FROM generate_series(1, :n) i""",
             {"n": accounts, "due": plan[-1][0].replace(day=DUE_DAY), "first": end_utc - timedelta(days=args.days + 30)})
        conn.execute(sa.text("CREATE TEMP TABLE scale_days (day date, units int, calls int)"))
        conn.execute(sa.text("INSERT INTO scale_days VALUES (:d, :u, :c)"),
                     [{"d": d, "u": u, "c": c} for d, u, c in plan])
        # One row per payment call: when, who, the channel, the declines before, how it ended, what came later.
        step("payment calls (staging)", f"""
            CREATE TEMP TABLE scale_units AS
            SELECT row_number() OVER (ORDER BY began) AS unit, s.*,
                   'CA' || md5('call' || began::text || account_id::text || r) AS call_sid
            FROM (
              SELECT ((d.day + make_interval(hours => {hours},
                                             secs => floor(random() * 3600)::int)) AT TIME ZONE {tz})
                       AT TIME ZONE 'UTC' AS began,
                     1 + floor(random() * :accounts)::int AS account_id,
                     {pick([('ivr', 68), ('callback', 12), ('agent', 20)], 'text')} AS channel,
                     {pick(DECLINES, 'int')} AS declines,
                     {pick(FINALS, 'text')} AS final,
                     {pick(FATES, 'text')} AS fate,
                     1500 + floor(power(random(), 2.2) * 45000)::int AS amount_cents,
                     random() AS r
              FROM scale_days d CROSS JOIN LATERAL generate_series(1, d.units) g
              OFFSET 0  -- each random column drawn once per row, however often it is used
            ) s""", {"accounts": accounts})
        conn.execute(sa.text("UPDATE scale_units SET declines = 1 WHERE final = 'none' AND declines = 0"))
        conn.execute(sa.text("ALTER TABLE scale_units ADD COLUMN attempts int"))
        conn.execute(sa.text("UPDATE scale_units SET attempts = declines + CASE WHEN final = 'none' THEN 0 ELSE 1 END"))
        conn.commit()

        paid_status = ("CASE u.fate WHEN 'refunded' THEN 'refunded' WHEN 'disputed' THEN 'disputed' "
                       "ELSE 'succeeded' END")
        step("payments", f"""
            INSERT INTO payments (attempt_key, confirmation_number, account_id, call_sid, channel, language,
                                  amount_cents, currency, status, decline_code, stripe_payment_intent, card_brand,
                                  card_last4, receipt_to, created_at, paid_at, refunded_cents)
            SELECT x.call_sid || ':' || (3 + 2 * x.n), x.confirmation, x.account_id, x.call_sid, x.channel,
                   x.language, x.amount_cents, 'usd', x.status,
                   CASE WHEN x.status = 'declined' THEN {pick(DECLINE_CODES, 'text')} END,
                   CASE WHEN x.status <> 'error' THEN 'pi_3' || substr(md5('pi' || x.unit || ':' || x.n), 1, 21) END,
                   CASE WHEN x.paid THEN {pick(BRANDS, 'text')} END,
                   CASE WHEN x.paid THEN lpad(floor(random() * 10000)::text, 4, '0') END,
                   x.phone, x.at, CASE WHEN x.paid THEN x.at + interval '3 seconds' END,
                   CASE WHEN NOT x.paid THEN 0 WHEN x.fate = 'refunded' THEN x.amount_cents
                        WHEN x.fate = 'partial' THEN x.amount_cents / 2 ELSE 0 END
            FROM (
              SELECT u.*, a.language, a.phone, n.n, u.began + (n.n - 1) * interval '75 seconds' AS at,
                     (n.n = u.attempts AND u.final = 'succeeded') AS paid,
                     CASE WHEN n.n < u.attempts OR u.final = 'none' THEN 'declined'
                          WHEN u.final = 'error' THEN 'error' ELSE {paid_status} END AS status,
                     CASE WHEN n.n = u.attempts AND u.final = 'succeeded'
                          THEN (10000000 + (u.unit * 2654435761) % 89999999)::text END AS confirmation
              FROM scale_units u JOIN accounts a ON a.id = u.account_id
              CROSS JOIN LATERAL generate_series(1, u.attempts) AS n(n)
            ) x
            ORDER BY x.at""")
        step("settled payments (staging)", """
            CREATE TEMP TABLE scale_paid AS
            SELECT p.id, p.account_id, p.amount_cents, p.refunded_cents, p.paid_at, p.confirmation_number,
                   a.account_number, a.phone, a.language, u.fate, u.unit, u.r, u.channel,
                   random() < 0.004 AS receipt_failed  -- a receipt Twilio could never deliver
            FROM payments p JOIN scale_units u ON u.call_sid = p.call_sid JOIN accounts a ON a.id = p.account_id
            WHERE p.paid_at IS NOT NULL""")
        _load_money(step, args, end_utc)
        _load_outbox(step, args, tz, end_utc, accounts)
        _load_calls(step, tz, hours, accounts)
        _load_staff(step, tz, end_utc, args.days)
        print("  rebuilding indexes and constraints", flush=True)
        for statement in rebuild:
            conn.execute(sa.text(statement))
        conn.commit()
        conn.execute(sa.text("DROP TABLE scale_units, scale_paid, scale_days"))
        conn.commit()
    # VACUUM sets the visibility map as autovacuum would have long since on a live database; ANALYZE the plans' figures.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE)"))
        note = f"{LOADED} ~{args.payments} payments, {args.calls} calls, {args.days} days, seed {args.seed}"
        conn.execute(sa.text(f'COMMENT ON DATABASE "{args.database}" IS {sql_text(note)}'))
    print(f"  loaded and analysed in {time.perf_counter() - started:.0f} s")


def _drop_indexes(conn: sa.Connection, tables: list[str]) -> list[str]:
    """Drop the big tables' secondary indexes, unique and foreign keys (a bulk load builds them once, after);
    returns the statements that put back exactly what the migrations made."""
    names = ", ".join(sql_text(t) for t in tables)
    constraints = conn.execute(sa.text(f"""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint
        WHERE conrelid::regclass::text IN ({names}) AND contype IN ('u', 'f')""")).all()
    indexes = conn.execute(sa.text(f"""
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename IN ({names}) AND i.schemaname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""")).all()
    for table, name, _, _kind in sorted(constraints, key=lambda c: c[3] != "f"):  # foreign keys first
        conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    return ([definition for _, definition in indexes]
            + [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, kind in sorted(constraints, key=lambda c: c[3])
               if kind == "u"]
            + [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, kind in constraints if kind == "f"])


def _load_money(step: Step, args: argparse.Namespace, end_utc: datetime) -> None:
    """The posting file's rows: every settled payment, then refunds, disputes and won disputes on their own days."""
    end = {"end": end_utc}
    step("money movements: payments", """
        INSERT INTO money_movements (entry_id, type, amount_cents, payment_id, occurred_at, recorded_at)
        SELECT 'pay_' || id, 'payment', amount_cents, id, paid_at, paid_at FROM scale_paid ORDER BY paid_at""")
    # A refund a staff member asked for 1-20 days after the payment; a dispute 10-60 days after; won 40-75 days later.
    step("refunds (requests and movements)", """
        CREATE TEMP TABLE scale_reversals AS
        SELECT p.*, least(p.paid_at + make_interval(days => 1 + floor(p.r * 20)::int, mins => floor(p.r * 600)::int),
                          :end - interval '1 minute') AS refunded_at,
                    least(p.paid_at + make_interval(days => 10 + floor(p.r * 50)::int), :end - interval '1 minute')
                      AS disputed_at,
                    'Billing Admin ' || (1 + floor(p.r * 3)::int) AS admin,
                    're_3' || substr(md5('re' || p.unit), 1, 21) AS refund_id,
                    'du_1' || substr(md5('du' || p.unit), 1, 21) AS dispute_id
        FROM scale_paid p WHERE p.fate <> 'kept'""", end)
    step("refund movements", """
        INSERT INTO money_movements (entry_id, type, amount_cents, payment_id, occurred_at, recorded_at)
        SELECT 're_' || refund_id, 'refund', -refunded_cents, id, refunded_at, refunded_at
        FROM scale_reversals WHERE fate IN ('refunded', 'partial') ORDER BY refunded_at""")
    step("refund requests", """
        INSERT INTO refund_requests (payment_id, number, amount_cents, requested_by, status, stripe_refund_id,
                                     failure_code, created_at, updated_at)
        SELECT id, 1, refunded_cents, admin, 'succeeded', refund_id, NULL, refunded_at - interval '2 seconds',
               refunded_at
        FROM scale_reversals WHERE fate IN ('refunded', 'partial') ORDER BY refunded_at""")
    step("dispute movements", """
        INSERT INTO money_movements (entry_id, type, amount_cents, payment_id, occurred_at, recorded_at)
        SELECT 'dp_' || dispute_id, 'dispute', -amount_cents, id, disputed_at, disputed_at
        FROM scale_reversals WHERE fate IN ('disputed', 'dispute_won')
        UNION ALL
        SELECT 'dw_' || dispute_id, 'dispute_won', amount_cents, id,
               least(disputed_at + make_interval(days => 40 + floor(r * 35)::int), :end - interval '1 minute'),
               least(disputed_at + make_interval(days => 40 + floor(r * 35)::int), :end - interval '1 minute')
        FROM scale_reversals WHERE fate = 'dispute_won'
        ORDER BY 5""", end)


def _load_outbox(step: Step, args: argparse.Namespace, tz: str, end_utc: datetime, accounts: int) -> None:
    """A receipt for every settled payment (a few failed for good) and a reminder a month for every account."""
    errors = sql_array([code for code, _ in RECEIPT_ERRORS], "int")
    words = sql_array([text for _, text in RECEIPT_ERRORS], "text")
    local = f"(p.paid_at AT TIME ZONE 'UTC' AT TIME ZONE {tz})"
    dollars = "to_char(p.amount_cents / 100.0, 'FM999,990.00')"
    receipt_en = (f"{sql_text(ORG + ': payment of $')} || {dollars} || ' received for account ending ' || "
                  f"right(p.account_number, 4) || ' on ' || to_char({local}, 'Mon FMDD, YYYY FMHH12\\:MI AM') || "
                  "'. Confirmation ' || p.confirmation_number || '. Remaining balance $0.00.'")
    receipt_es = (f"{sql_text(ORG + ': recibimos su pago de $')} || {dollars} || ' para la cuenta que termina en ' "
                  f"|| right(p.account_number, 4) || ' el ' || to_char({local}, 'FMDD/MM/YYYY HH24\\:MI') || "
                  "'. Confirmación ' || p.confirmation_number || '. Saldo restante $0.00.'")
    step("receipts and reminders (outbox)", f"""
        INSERT INTO outbox_messages (dedupe_key, kind, to_number, account_id, payment_id, respect_quiet_hours,
                                     error_code, provider_sid, body, status, attempts, next_attempt_at, claimed_until,
                                     last_error, created_at, sent_at)
        SELECT * FROM (
          SELECT 'receipt:' || p.id, 'receipt', p.phone, a.id, p.id, false,
                 CASE WHEN p.receipt_failed THEN {errors}[1 + floor(p.r * 4)::int] END,
                 CASE WHEN NOT p.receipt_failed THEN 'SM' || md5('sm' || p.id) END,
                 CASE WHEN p.language = 'es' THEN {receipt_es} ELSE {receipt_en} END,
                 CASE WHEN p.receipt_failed THEN 'failed' ELSE 'sent' END,
                 CASE WHEN p.receipt_failed THEN 12 ELSE 1 END,
                 p.paid_at, NULL::timestamp,
                 CASE WHEN p.receipt_failed THEN 'Twilio ' || {errors}[1 + floor(p.r * 4)::int] || ': '
                      || {words}[1 + floor(p.r * 4)::int] END,
                 p.paid_at, CASE WHEN NOT p.receipt_failed THEN p.paid_at + interval '2 seconds' END
          FROM scale_paid p JOIN accounts a ON a.id = p.account_id
          UNION ALL
          SELECT 'reminder:' || a.id || ':' || m.due::date, 'reminder', a.phone, a.id, NULL, true,
                 CASE WHEN s.status = 'failed' THEN 21610 END,
                 CASE WHEN s.status = 'sent' THEN 'SM' || md5('rm' || a.id || m.due) END,
                 {sql_text(ORG + ': $')} || to_char(a.balance_cents / 100.0, 'FM999,990.00') || ' is due '
                   || to_char(m.due, 'Mon FMDD') || '. Get a call to pay now: https://ivr.example.coop/r/'
                   || substr(md5('tok' || a.id || m.due), 1, 22) || ' Reply STOP to opt out',
                 s.status, CASE WHEN s.status = 'dropped' THEN 0 ELSE 1 END, s.at, NULL::timestamp,
                 CASE WHEN s.status = 'failed' THEN 'Twilio 21610: Attempt to send to unsubscribed recipient' END,
                 s.at - interval '13 hours', CASE WHEN s.status = 'sent' THEN s.at + interval '2 seconds' END
          FROM generate_series(date_trunc('month', :first) + interval '{DUE_DAY - 1} days', :end, interval '1 month')
               AS m(due)
          CROSS JOIN accounts a
          CROSS JOIN LATERAL (
            SELECT {pick([('sent', 94), ('dropped', 5), ('failed', 1)], 'text')} AS status,
                   ((m.due - interval '3 days' + interval '10 hours') AT TIME ZONE {tz}) AT TIME ZONE 'UTC'
                     + make_interval(secs => a.id % 600) AS at
            OFFSET 0
          ) s
          WHERE a.status = 'active'
            AND ((m.due - interval '3 days' + interval '10 hours') AT TIME ZONE {tz}) AT TIME ZONE 'UTC' < :end
        ) o
        ORDER BY 15  -- created_at""", {"first": end_utc - timedelta(days=args.days), "end": end_utc})


def _load_calls(step: Step, tz: str, hours: str, accounts: int) -> None:
    """Every payment call's row, then the calls that did not pay, in the order they began (as ids grow in life)."""
    shapes = list(range(1, len(OTHER_CALLS) + 1))
    shape = pick(list(zip(shapes, [s[0] for s in OTHER_CALLS], strict=True)), "int")

    def column(index: int, cast: str) -> str:
        return sql_array([s[index] for s in OTHER_CALLS], cast) + "[c.shape]"

    paths = sql_array([_json(s[4]) for s in OTHER_CALLS], "text")
    seq = sql_array([len(s[4]) + 1 for s in OTHER_CALLS], "int") + "[c.shape]"
    twiml_kind = column(5, "text")

    def twiml(kind: str, language: str) -> str:
        cases = " ".join(f"WHEN {sql_text(k)} THEN {sql_text(TWIML[(k, 'en')])}" for k in {k for k, _ in TWIML})
        cases_es = " ".join(f"WHEN {sql_text(k)} THEN {sql_text(TWIML[(k, 'es')])}" for k in {k for k, _ in TWIML})
        return f"CASE WHEN {language} = 'es' THEN CASE {kind} {cases_es} END ELSE CASE {kind} {cases} END END"

    identified = sql_array([s[3] in IDENTIFIED for s in OTHER_CALLS], "boolean") + "[c.shape]"
    prefix = ("CASE u.channel WHEN 'agent' THEN '\"TRANSFER_CONFIRM\"' WHEN 'callback' THEN '\"CALLBACK_WELCOME\"' "
              "ELSE CASE WHEN u.r < 0.7 THEN '\"WELCOME\",\"OFFER_CALLER_ID\",\"ENTER_LAST4\",\"SUMMARY\"' "
              "ELSE '\"WELCOME\",\"ENTER_ACCOUNT\",\"ENTER_LAST4\",\"SUMMARY\"' END "
              "|| CASE WHEN u.r * 10 - floor(u.r * 10) < 0.25 THEN ',\"ENTER_AMOUNT\",\"CONFIRM_AMOUNT\"' ELSE '' END END")
    card = ("repeat(',\"CARD_ENTRY\",\"CARD_DECLINED\"', u.declines) || CASE u.final "
            "WHEN 'succeeded' THEN ',\"CARD_ENTRY\",\"CONFIRMATION\"' WHEN 'error' THEN ',\"CARD_ENTRY\",\"PROCESSOR_DOWN\"' "
            "ELSE '' END")
    last = "CASE WHEN u.channel = 'agent' THEN 'RETURN_TO_AGENT' ELSE 'GOODBYE' END"
    step("calls", f"""
        INSERT INTO call_sessions (call_sid, from_number, to_number, channel, state, language, account_id, data, seq,
                                   last_twiml, call_status, ended_at, furthest, path, created_at, updated_at, version)
        SELECT call_sid, from_number, to_number, channel, state, language, account_id, data::json, seq, last_twiml,
               CASE WHEN ended_at IS NOT NULL THEN 'completed' END, ended_at, furthest, path::json, created_at,
               coalesce(ended_at, created_at), seq + 2
        FROM (
          SELECT u.call_sid, a.phone AS from_number, {sql_text(LINE)} AS to_number, u.channel, {last} AS state,
                 a.language, a.id AS account_id,
                 json_build_object('silences', 0, 'invalid', 0, 'identified', true, 'amount_cents', u.amount_cents,
                                   'pay_attempts', u.attempts, 'paid_cents',
                                   CASE WHEN u.final = 'succeeded' THEN u.amount_cents END)::text AS data,
                 array_length(string_to_array(p.path, ','), 1) + 1 AS seq,
                 {twiml("CASE WHEN u.channel = 'agent' THEN 'return' ELSE 'goodbye' END", 'a.language')} AS last_twiml,
                 u.began + (u.attempts - 1) * interval '75 seconds' + interval '50 seconds' AS ended_at,
                 CASE WHEN u.final = 'succeeded' THEN 'paid' ELSE 'card_entry' END AS furthest,
                 '[' || p.path || ']' AS path,
                 u.began - interval '80 seconds' AS created_at
          FROM scale_units u JOIN accounts a ON a.id = u.account_id
          CROSS JOIN LATERAL (SELECT {prefix} || {card} || ',\"' || {last} || '\"' AS path) p
          UNION ALL
          SELECT 'CA' || md5('other' || c.began::text || c.account_id || c.r), a.phone,
                 CASE WHEN {column(1, 'text')} = 'callback' THEN a.phone ELSE {sql_text(LINE)} END,
                 {column(1, 'text')}, {column(2, 'text')}, c.language,
                 CASE WHEN {identified} THEN a.id END,
                 CASE WHEN {identified} THEN '{{"silences": 0, "invalid": 0, "identified": true}}'
                      ELSE '{{"silences": 0, "invalid": 0}}' END,
                 {seq}, {twiml(twiml_kind, 'c.language')},
                 CASE WHEN c.r < 0.998 THEN c.began + make_interval(secs => 20 + floor(c.r * 300)::int) END,
                 {column(3, 'text')}, {paths}[c.shape], c.began
          FROM (
            SELECT ((d.day + make_interval(hours => {hours},
                                           secs => floor(random() * 3600)::int)) AT TIME ZONE {tz})
                     AT TIME ZONE 'UTC' AS began,
                   1 + floor(random() * :accounts)::int AS account_id,
                   {shape} AS shape,
                   CASE WHEN random() < 0.14 THEN 'es' ELSE 'en' END AS language,
                   random() AS r
            FROM scale_days d CROSS JOIN LATERAL generate_series(1, d.calls) g
            OFFSET 0
          ) c JOIN accounts a ON a.id = c.account_id
        ) calls
        ORDER BY created_at""",
         {"accounts": accounts})


def _json(path: list[str]) -> str:
    return "[" + ",".join(f'"{s}"' for s in path) + "]"


def _load_staff(step: Step, tz: str, end_utc: datetime, days: int) -> None:
    """Agents, supervisors and admins, and the audit trail their work left: transfers, sign-ins, refunds."""
    step("staff", """
        INSERT INTO agents (name, key_hash, signing_secret, active, role, created_at)
        SELECT name, md5(name) || md5('k' || name), md5('s' || name) || md5(name), true, role, :first
        FROM (SELECT 'Agent ' || i AS name, 'agent' AS role FROM generate_series(1, 14) i
              UNION ALL SELECT 'Supervisor ' || i, 'supervisor' FROM generate_series(1, 3) i
              UNION ALL SELECT 'Billing Admin ' || i, 'admin' FROM generate_series(1, 3) i) s""",
         {"first": end_utc - timedelta(days=days + 30)})
    step("audit log", f"""
        INSERT INTO agent_audit_log (at, agent_id, agent_name, action, account, call_sid, subject, outcome, detail)
        SELECT * FROM (
          SELECT u.began - interval '30 seconds', g.id, g.name, 'transfer.create', '…' || right(a.account_number, 4),
                 u.call_sid, 'tr_' || substr(md5('tr' || u.unit), 1, 20), 'created',
                 '$' || to_char(u.amount_cents / 100.0, 'FM999,990.00')
          FROM scale_units u JOIN accounts a ON a.id = u.account_id
          JOIN agents g ON g.name = 'Agent ' || (1 + floor(u.r * 14)::int)
          WHERE u.channel = 'agent'
          UNION ALL
          SELECT u.began + (u.attempts - 1) * interval '75 seconds' + interval '40 seconds', g.id, g.name,
                 'transfer.outcome', '…' || right(a.account_number, 4), u.call_sid,
                 'tr_' || substr(md5('tr' || u.unit), 1, 20),
                 CASE WHEN u.final = 'succeeded' THEN 'approved' ELSE 'declined' END, NULL
          FROM scale_units u JOIN accounts a ON a.id = u.account_id
          JOIN agents g ON g.name = 'Agent ' || (1 + floor(u.r * 14)::int)
          WHERE u.channel = 'agent'
          UNION ALL
          SELECT ((d.day + interval '8 hours' + make_interval(mins => g.id)) AT TIME ZONE {tz}) AT TIME ZONE 'UTC',
                 g.id, g.name,
                 'console.login', NULL, NULL, NULL, 'ok', NULL
          FROM scale_days d CROSS JOIN agents g WHERE extract(isodow FROM d.day) < 6
          UNION ALL
          SELECT r.refunded_at - interval '2 seconds', g.id, g.name, 'ops.refund', '…' || right(r.account_number, 4),
                 NULL, r.confirmation_number, 'refunded',
                 '$' || to_char(r.refunded_cents / 100.0, 'FM999,990.00') || ' request 1'
          FROM scale_reversals r JOIN agents g ON g.name = r.admin
          WHERE r.fate IN ('refunded', 'partial')
        ) e ORDER BY 1""")


# --- measuring ----------------------------------------------------------------------------------------


def count_by_day(conn: sa.Connection, column: str, table: str, tz: str) -> dict[date, int]:
    """Rows per local day of ``column``."""
    rows = conn.execute(sa.text(
        f"SELECT ({column} AT TIME ZONE 'UTC' AT TIME ZONE :tz)::date, count(*) FROM {table} GROUP BY 1"), {"tz": tz})
    return dict(rows.all())


class Picks:
    """The days and payments the pages are asked about, found in the data (so ``--reuse`` works on any day)."""

    def __init__(self, url: str, tz: str) -> None:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            per_day = count_by_day(conn, "created_at", "payments", tz)
            days = sorted(per_day)
            self.first, self.last = days[0], days[-1]
            self.busy = max(days, key=lambda d: per_day[d])
            # An ordinary day: a weekday that is not around a due date, with a median day's payments.
            plain = [d for d in days if d.weekday() < 5 and abs(d.day - DUE_DAY) > 2 and d.day != 1] or days
            median = statistics.median(per_day[d] for d in plain)
            self.ordinary = min(reversed(plain), key=lambda d: abs(per_day[d] - median))
            self.per_day = per_day
            busy_start = datetime.combine(self.busy, datetime.min.time(), ZoneInfo(tz)).astimezone(UTC)
            window = {"a": busy_start.replace(tzinfo=None), "b": (busy_start + timedelta(days=1)).replace(tzinfo=None)}
            # A payment with the most to show: a refund and its audit entry, else a retry after a decline, else any.
            self.confirmation = conn.scalar(sa.text("""
                SELECT p.confirmation_number FROM payments p
                WHERE p.confirmation_number IS NOT NULL
                ORDER BY (p.refunded_cents > 0) DESC,
                         EXISTS (SELECT 1 FROM payments d WHERE d.call_sid = p.call_sid AND d.status = 'declined') DESC,
                         p.id DESC
                LIMIT 1"""))
            self.last4 = conn.scalar(sa.text("""
                SELECT right(a.account_number, 4) FROM payments p JOIN accounts a ON a.id = p.account_id
                WHERE p.created_at >= :a AND p.created_at < :b ORDER BY p.id LIMIT 1"""), window)
            self.movements = count_by_day(conn, "occurred_at", "money_movements", tz)
            self.payments_total = conn.scalar(sa.text("SELECT count(*) FROM payments"))
            self.calls_total = conn.scalar(sa.text("SELECT count(*) FROM call_sessions"))
        engine.dispose()


# Before each request of these pages, forget the kept figures of: the day shown ("day") or every day ("all").
FORGET = {"as it happens": "day", "first view": "all"}


def pages(p: Picks) -> list[tuple[str, str]]:
    """(label, URL) of every page timed."""
    month_ago = p.ordinary - timedelta(days=30)
    return [
        (f"Today, busiest day ({p.busy})", f"/ops?date={p.busy}"),
        ("Today, busiest day, as it happens", f"/ops?date={p.busy}"),
        ("Today, busiest day, first view", f"/ops?date={p.busy}"),
        (f"Today, ordinary day ({p.ordinary})", f"/ops?date={p.ordinary}"),
        ("payments: the busiest day", f"/ops/payments?date={p.busy}"),
        ("payments: a week", f"/ops/payments?from={p.ordinary - timedelta(days=6)}&to={p.ordinary}"),
        ("payments: a confirmation number", f"/ops/payments?confirmation={p.confirmation}"),
        ("payments: account's last four, 2 years", f"/ops/payments?from={p.first}&to={p.last}&last4={p.last4}"),
        ("payments: callback + refunded, a month",
         f"/ops/payments?from={month_ago}&to={p.ordinary}&channel=callback&status=refunded"),
        ("payments: declined, the busiest day", f"/ops/payments?date={p.busy}&status=declined"),
        ("payments: all, 2 years", f"/ops/payments?from={p.first}&to={p.last}"),
        ("payments: disputed, 2 years", f"/ops/payments?from={p.first}&to={p.last}&status=disputed"),
        ("a payment's page", f"/ops/payments/{p.confirmation}"),
        ("calls: the busiest day", f"/ops/calls?date={p.busy}"),
        ("calls: an ordinary day", f"/ops/calls?date={p.ordinary}"),
        ("messages", "/ops/messages"),
        ("messages: failed receipts", "/ops/messages?status=failed&kind=receipt"),
        ("messages: reminders", "/ops/messages?kind=reminder"),
    ]


def shown(html: str, url: str) -> str:
    """What the page showed, in a few words: the day's payments and calls, or the rows listed."""
    page = lxml.html.fromstring(html)

    def text(element_id: str) -> str:
        found = page.xpath(f'//*[@id="{element_id}"]')
        return found[0].text_content().strip() if found else "?"

    def rows(element_id: str, xpath: str = ".//tbody/tr") -> int:
        found = page.xpath(f'//*[@id="{element_id}"]')
        return len([r for r in found[0].xpath(xpath)
                    if not r.xpath("./td[@colspan]") and r.text_content().strip() != "None."]) if found else 0

    if url.startswith("/ops?"):
        return f"{text('paid-count')} payments, {text('calls')} calls"
    if "/ops/payments/" in url:
        steps = len(page.xpath('//ol[@id="call-path"]/li'))
        return (f"{rows('attempts')} attempts, {rows('deliveries')} receipts, {steps} steps, "
                f"{rows('trail', './li')} staff actions")
    table = "payments" if "/payments" in url else "calls" if "/calls" in url else "messages"
    more = " (more in the CSV)" if "the CSV has them all" in html else ""
    return f"{rows(table)} rows{more}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure_pages(url: str, args: argparse.Namespace, picks: Picks) -> list[dict]:
    """Sign in as a supervisor through /agent/login and time each page on the real app."""
    from ivr import create_app
    from ivr.agents.keys import create_agent, rotate_key
    from ivr.agents.models import Agent
    from ivr.extensions import db
    from ivr.ops.models import ClosedDay

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "ORG_TIMEZONE": args.timezone, "ORG_NAME": ORG,
                      "PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"})
    with app.app_context():
        agent = db.session.scalar(sa.select(Agent).where(Agent.name == SUPERVISOR))
        if agent is None:
            agent, key = create_agent(SUPERVISOR, "supervisor")
        else:
            key = rotate_key(agent)
        db.session.commit()
        engine = db.engine
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ops").get_data(as_text=True)).group(1)
    signed = client.post("/agent/login", data={"csrf_token": token, "name": SUPERVISOR, "key": key, "next": "/ops"})
    if signed.status_code != 303:
        raise SystemExit(f"sign-in failed: {signed.status_code}")

    sql_ms: list[float] = []
    started: list[float] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(*_args) -> None:
        started.append(time.perf_counter())

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _after(*_args) -> None:
        sql_ms.append((time.perf_counter() - started.pop()) * 1000)

    def forget(label: str) -> None:
        """Drop kept day figures, so the page counts them from the calls as it would for a day not over."""
        which = next((w for key, w in FORGET.items() if key in label), None)
        if which is None:
            return
        with app.app_context():
            query = sa.delete(ClosedDay)
            if which == "day":
                query = query.where(ClosedDay.day == picks.busy)
            db.session.execute(query)
            db.session.commit()

    results = []
    for label, path in pages(picks):
        for _ in range(args.warmup):
            forget(label)
            client.get(path)
        times, db_times, queries = [], [], 0
        html = ""
        for _ in range(args.repeat):
            forget(label)
            sql_ms.clear()
            begin = time.perf_counter()
            response = client.get(path)
            html = response.get_data(as_text=True)
            times.append((time.perf_counter() - begin) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code}")
            db_times.append(sum(sql_ms))
            queries = len(sql_ms)
        results.append({"label": label, "path": path, "median": statistics.median(times), "p95": pct(times, 95),
                        "db": statistics.median(db_times), "queries": queries, "shown": shown(html, path)})
    return results


def export_command() -> list[str]:
    script = Path(sys.executable).with_name("ivr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ivr.cli"]


# Starts the export and reports its peak RSS. Started straight from this process, the export would
# report this process's memory instead (Linux keeps the parent's high-water mark across fork and
# exec), so this small launcher (python -S: a few megabytes) stands in between.
LAUNCHER = ("import os, sys; pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ); "
            "_, status, usage = os.wait4(pid, 0); sys.stderr.write(f'\\npeak_rss_kb={usage.ru_maxrss}\\n'); "
            "sys.exit(os.waitstatus_to_exitcode(status))")


def measure_export(url: str, tz: str, day: date | None) -> dict:
    """Run ``ivr payments export [--date day]`` as its own process: rows written, seconds, peak RSS."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_"))},
           "DATABASE_URL": url, "ORG_TIMEZONE": tz, "PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"}
    args = [*export_command(), "payments", "export"] + (["--date", day.isoformat()] if day else [])
    begin = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, *args], env=env, stdout=subprocess.PIPE,
                                stderr=errors, cwd=ROOT)
        lines = 0
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 16):
            lines += chunk.count(b"\n")
        proc.wait()
        seconds = time.perf_counter() - begin
        errors.seek(0)
        said = errors.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {said[-2000:]}")
    peak = re.findall(r"peak_rss_kb=(\d+)", said)
    return {"rows": lines - 1, "seconds": seconds, "rss_mb": int(peak[-1]) / 1024}


def report(args: argparse.Namespace, picks: Picks, results: list[dict], exports: list[tuple[str, int, dict]]) -> bool:
    """Print the figures; True when every export wrote exactly its day's rows."""
    print(f"\n{args.database}: {picks.payments_total:,} payments, {picks.calls_total:,} calls, {picks.first} to "
          f"{picks.last}; busiest day {picks.busy} ({picks.per_day[picks.busy]:,} payments), ordinary day "
          f"{picks.ordinary} ({picks.per_day[picks.ordinary]:,})")
    print(f"\n{'page (signed in as a supervisor)':<44} {'median':>8} {'p95':>8} {'SQL':>7} {'queries':>7}  "
          f"{'< ' + str(BUDGET_MS) + ' ms':<8} shows")
    over = []
    for r in results:
        within = r["p95"] < BUDGET_MS
        once = "first view" in r["label"]  # paid once for each day ever shown, not by every view
        if not (within or once):
            over.append(r["label"])
        verdict = ("yes" if within else "NO") + (" (once)" if once else "")
        print(f"{r['label']:<44} {r['median']:>6.1f}ms {r['p95']:>6.1f}ms {r['db']:>5.1f}ms {r['queries']:>7}  "
              f"{verdict:<8} {r['shown']}")
    print(f"  ({args.repeat} timed requests each after {args.warmup} untimed; < {BUDGET_MS} ms: the p95; SQL: the median"
          " request's time in the database driver)\n"
          "  (as it happens: the day's calls counted from their rows, as for a day not over yet; first view: all 30"
          " days counted and kept, as the first time a month is shown)")
    print("every page within the budget" if not over else f"over the budget: {', '.join(over)}")
    print(f"\n{'ivr payments export':<44} {'rows':>9} {'expected':>9} {'seconds':>8} {'peak RSS':>9}")
    ok = True
    for label, expected, e in exports:
        ok &= e["rows"] == expected
        print(f"{label:<44} {e['rows']:>9,} {expected:>9,} {e['seconds']:>7.1f}s {e['rss_mb']:>7.1f}MB")
    print("every export wrote its day's rows" if ok else "an export did NOT write its day's rows")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000, help="payment attempts (about)")
    parser.add_argument("--calls", type=int, default=5_000_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=730, help="days of history, ending yesterday")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--reuse", action="store_true", help="keep the database when it is already loaded")
    parser.add_argument("--database", default="ivr_scale")
    parser.add_argument("--timezone", default="America/New_York", help="ORG_TIMEZONE of the made-up co-op")
    parser.add_argument("--seed", type=float, default=0.42, help="PostgreSQL setseed(): the same data every time")
    parser.add_argument("--exports", choices=("days", "busiest", "all"), default="days",
                        help="days: nothing, ordinary and busiest day; busiest: that one only; all: days and the whole "
                             "history")
    args = parser.parse_args(argv)

    url = prepare(args)
    picks = Picks(url, args.timezone)
    results = measure_pages(url, args, picks)
    quiet = date(2000, 1, 3)
    wanted = [(f"--date {picks.busy} (busiest day)", picks.busy, picks.movements.get(picks.busy, 0))]
    if args.exports != "busiest":
        wanted[:0] = [(f"--date {quiet} (nothing that day)", quiet, 0),
                      (f"--date {picks.ordinary} (ordinary day)", picks.ordinary, picks.movements.get(picks.ordinary, 0))]
    if args.exports == "all":
        wanted.append(("(no --date: the whole history)", None, sum(picks.movements.values())))
    exports = [(label, expected, measure_export(url, args.timezone, day)) for label, day, expected in wanted]
    return 0 if report(args, picks, results, exports) else 1


if __name__ == "__main__":
    sys.exit(main())
