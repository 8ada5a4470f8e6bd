"""The posting file as a billing clerk uses it: every day's money movements, signed, each exactly once.

Payments go through the one charge step against Stripe's fake; refunds through the console's refund
function or Stripe's dashboard; disputes arrive as Stripe's signed events. Each day's file is read
with ``ivr payments export --date`` in the co-op's time zone.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers import send_event

import ivr.all_models  # noqa: F401  (every table, for the upgrade test's clean-up)
from ivr.cli import main
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import ledger, refunds
from ivr.money.charge import APPROVED, charge_token

ZONE = "America/New_York"
MONDAY = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)  # 10:00 in New York
TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
FRIDAY = MONDAY + timedelta(days=4)
WEEK = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]


@pytest.fixture
def account_id(make_account):
    return make_account(balance_cents=12345)


@pytest.fixture
def pay(app, stripe_api, monkeypatch):
    """Pay through the one charge step on the given day; returns (payment id, confirmation, PaymentIntent id)."""

    def pay(account_id, cents, when, key):
        monkeypatch.setattr(ledger, "utcnow", lambda: when)
        with app.app_context():
            account = db.session.get(Account, account_id)
            outcome = charge_token(account, cents, key, "pm_card_visa", channel="ivr", call_sid=None,
                                   language="en", caller="+12025550143")
            db.session.commit()
            assert outcome.status == APPROVED
            payment = outcome.payment
            return payment.id, payment.confirmation_number, payment.stripe_payment_intent

    return pay


def export(database_url, day=None):
    """``ivr payments export [--date day]`` as the clerk runs it; the rows as dicts."""
    args = ["payments", "export"] + (["--date", day.isoformat()] if day else [])
    result = CliRunner().invoke(main, args, env={"DATABASE_URL": database_url, "ORG_TIMEZONE": ZONE})
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def cents(amount: str) -> int:
    whole, _, part = amount.lstrip("-").partition(".")
    value = int(whole) * 100 + int(part)
    return -value if amount.startswith("-") else value


def balance(app, account_id):
    with app.app_context():
        return db.session.get(Account, account_id).balance_cents


def test_monday_payment_refunded_in_part_on_wednesday(app, client, database_url, stripe_api, pay, account_id):
    payment_id, confirmation, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        outcome = refunds.refund(db.session.get(Payment, payment_id), 2000, "Alex Admin", request_number=1)
    assert outcome.status == refunds.REFUNDED
    # Stripe's webhooks report the same refund afterwards, twice over.
    (refund,) = stripe_api.refunds
    send_event(client, "refund.created", refund)
    send_event(client, "charge.refunded", {"id": refund["charge"], "object": "charge", "amount": 5000,
                                           "amount_refunded": 2000, "payment_intent": intent, "refunded": False})

    monday, tuesday, wednesday = (export(database_url, day) for day in WEEK[:3])

    assert [(r["confirmation_number"], r["amount"], r["type"], r["paid_at"]) for r in monday] == [
        (confirmation, "50.00", "payment", "2026-11-16T15:00:00Z")
    ]
    assert tuesday == []
    assert [(r["confirmation_number"], r["amount"], r["type"], r["entry_id"]) for r in wednesday] == [
        (confirmation, "-20.00", "refund", f"re_{refund['id']}")
    ]
    assert wednesday[0]["stripe_payment_intent"] == intent
    entry_ids = [r["entry_id"] for day in WEEK for r in export(database_url, day)]
    assert sorted(entry_ids) == sorted([f"pay_{payment_id}", f"re_{refund['id']}"])
    assert balance(app, account_id) == 12345 - 5000 + 2000


def test_reexporting_a_day_gives_the_same_rows(app, database_url, stripe_api, pay, account_id):
    payment_id, _, _ = pay(account_id, 5000, MONDAY, "CAmonday:1")
    first = export(database_url, WEEK[0])
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        refunds.refund(db.session.get(Payment, payment_id), None, "Alex Admin")

    again = export(database_url, WEEK[0])

    assert [(r["entry_id"], r["amount"], r["type"]) for r in again] == [(r["entry_id"], r["amount"], r["type"]) for r in first]
    assert again[0]["status"] == "refunded"  # what became of the payment since, for the clerk's information


def dispute(intent, status, *, withdrawn=None, reinstated=None, amount=5000, dispute_id="dp_1"):
    """A Dispute object as Stripe sends it, with the balance transactions that moved its money."""
    transactions = []
    if withdrawn:
        transactions.append({"id": "txn_w", "object": "balance_transaction", "amount": -amount, "fee": 1500,
                             "created": int(withdrawn.timestamp()), "type": "adjustment"})
    if reinstated:
        transactions.append({"id": "txn_r", "object": "balance_transaction", "amount": amount, "fee": -1500,
                             "created": int(reinstated.timestamp()), "type": "adjustment"})
    return {"id": dispute_id, "object": "dispute", "amount": amount, "charge": "ch_1", "payment_intent": intent,
            "currency": "usd", "status": status, "reason": "fraudulent",
            "created": int((withdrawn or MONDAY).timestamp()), "balance_transactions": transactions}


def test_dispute_created_then_won(app, client, database_url, pay, account_id):
    _, confirmation, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    send_event(client, "charge.dispute.created", dispute(intent, "needs_response", withdrawn=TUESDAY))
    assert balance(app, account_id) == 12345  # owed again while the bank holds the money
    won = dispute(intent, "won", withdrawn=TUESDAY, reinstated=FRIDAY)
    send_event(client, "charge.dispute.closed", won)
    send_event(client, "charge.dispute.closed", won)  # delivered again under a new event id

    files = {day: export(database_url, day) for day in WEEK}

    assert [(r["amount"], r["type"], r["entry_id"]) for r in files[WEEK[1]]] == [("-50.00", "dispute", "dp_dp_1")]
    assert [(r["amount"], r["type"], r["entry_id"]) for r in files[WEEK[4]]] == [("50.00", "dispute_won", "dw_dp_1")]
    assert {r["confirmation_number"] for rows in files.values() for r in rows} == {confirmation}
    assert sum(cents(r["amount"]) for rows in files.values() for r in rows) == 5000
    assert balance(app, account_id) == 12345 - 5000
    with app.app_context():
        assert db.session.scalar(sa.select(Payment.status)) == "succeeded"


def test_lost_dispute_takes_the_money_once(app, client, database_url, pay, account_id):
    _, _, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    opened = dispute(intent, "needs_response", withdrawn=TUESDAY)
    send_event(client, "charge.dispute.created", opened)
    send_event(client, "charge.dispute.funds_withdrawn", opened)  # the same withdrawal, reported again
    send_event(client, "charge.dispute.closed", {**opened, "status": "lost"})

    rows = export(database_url)

    assert [(r["amount"], r["type"]) for r in rows] == [("50.00", "payment"), ("-50.00", "dispute")]
    assert rows[-1]["status"] == "disputed"
    assert balance(app, account_id) == 12345


def test_an_inquiry_takes_nothing_until_the_funds_are_withdrawn(app, client, database_url, pay, account_id):
    _, _, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    send_event(client, "charge.dispute.created", dispute(intent, "warning_needs_response"))
    assert [r["type"] for r in export(database_url)] == ["payment"]
    assert balance(app, account_id) == 12345 - 5000

    send_event(client, "charge.dispute.funds_withdrawn", dispute(intent, "needs_response", withdrawn=WEDNESDAY))

    assert [(r["amount"], r["type"]) for r in export(database_url, WEEK[2])] == [("-50.00", "dispute")]
    assert balance(app, account_id) == 12345


def test_a_closed_inquiry_posts_nothing(app, client, database_url, pay, account_id):
    _, _, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    send_event(client, "charge.dispute.created", dispute(intent, "warning_needs_response"))
    send_event(client, "charge.dispute.closed", dispute(intent, "warning_closed"))

    rows = export(database_url)

    assert [(r["type"], r["status"]) for r in rows] == [("payment", "succeeded")]


def test_redelivered_events_change_nothing(app, client, database_url, stripe_api, pay, account_id):
    _, _, intent = pay(account_id, 5000, MONDAY, "CAmonday:1")
    stripe_api.now = lambda: int(TUESDAY.timestamp())
    refund = stripe_api.add_refund(intent, 1500)  # from Stripe's dashboard
    for _ in range(2):
        send_event(client, "refund.created", refund, event_id="evt_refund")
        send_event(client, "charge.dispute.created", dispute(intent, "needs_response", withdrawn=WEDNESDAY),
                   event_id="evt_dispute")
    before = export(database_url), balance(app, account_id)

    send_event(client, "refund.created", refund)  # the same refund under a new event id
    send_event(client, "charge.refunded", {"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 1500,
                                           "payment_intent": intent, "refunded": False})
    send_event(client, "charge.dispute.funds_withdrawn", dispute(intent, "needs_response", withdrawn=WEDNESDAY))

    assert (export(database_url), balance(app, account_id)) == before
    assert [(r["amount"], r["type"]) for r in before[0]] == [("50.00", "payment"), ("-15.00", "refund"), ("-50.00", "dispute")]


def test_the_files_add_up_to_what_the_co_op_keeps(app, client, database_url, stripe_api, pay, make_account, account_id):
    other = make_account(account_number="55501234", phone="+12025550188", balance_cents=90000)
    first, _, first_intent = pay(account_id, 5000, MONDAY, "CA1:1")
    second, _, _ = pay(other, 30000, MONDAY + timedelta(hours=9), "CA2:1")  # 19:00 in New York, still Monday
    _, _, third_intent = pay(other, 12000, TUESDAY, "CA3:1")
    _, _, fourth_intent = pay(account_id, 4000, TUESDAY, "CA4:1")
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        refunds.refund(db.session.get(Payment, first), 1000, "Alex Admin")
        refunds.refund(db.session.get(Payment, second), None, "Alex Admin")
    send_event(client, "refund.created", stripe_api.add_refund(first_intent, 500))  # from Stripe's dashboard
    send_event(client, "charge.dispute.created", dispute(third_intent, "needs_response", withdrawn=WEDNESDAY,
                                                         amount=12000, dispute_id="dp_lost"))
    send_event(client, "charge.dispute.closed", dispute(third_intent, "lost", withdrawn=WEDNESDAY, amount=12000,
                                                        dispute_id="dp_lost"))
    send_event(client, "charge.dispute.created", dispute(fourth_intent, "needs_response", withdrawn=WEDNESDAY,
                                                         amount=4000, dispute_id="dp_won"))
    send_event(client, "charge.dispute.closed", dispute(fourth_intent, "won", withdrawn=WEDNESDAY, reinstated=FRIDAY,
                                                        amount=4000, dispute_id="dp_won"))

    files = [export(database_url, day) for day in WEEK]

    charged = sum(i["amount"] for i in stripe_api.successful_charges)
    refunded = sum(r["amount"] for r in stripe_api.refunds)
    lost = 12000
    assert charged - refunded - lost == 5000 + 30000 + 4000 - 1000 - 500 - 30000
    assert sum(cents(r["amount"]) for rows in files for r in rows) == charged - refunded - lost
    everything = export(database_url)
    assert sorted(r["entry_id"] for rows in files for r in rows) == sorted(r["entry_id"] for r in everything)
    assert len({r["entry_id"] for r in everything}) == len(everything) == 4 + 3 + 2 + 1


def test_upgrade_gives_payments_settled_before_it_their_rows(database_url):
    from ivr.migrate import upgrade

    upgrade(database_url, "6c359173c88a")  # the schema before the money-movements ledger
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO accounts (id, account_number, name, phone, balance_cents, past_due_cents, language, status,"
                " created_at, updated_at) VALUES (1, '12345001', 'Pat Member', '+12025550143', 0, 0, 'en', 'active',"
                " '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
            for pid, status, paid_at in [(1, "succeeded", "2026-11-16 15:00:00"), (2, "refunded", "2026-11-17 15:00:00"),
                                         (3, "declined", None)]:
                conn.execute(sa.text(
                    "INSERT INTO payments (id, attempt_key, confirmation_number, account_id, channel, language,"
                    " amount_cents, currency, status, created_at, paid_at, refunded_cents)"
                    " VALUES (:id, :key, :confirmation, 1, 'ivr', 'en', 2500, 'usd', :status, '2026-11-16 14:59:00',"
                    " :paid_at, 0)"),
                    {"id": pid, "key": f"CA{pid}:1", "confirmation": f"1000000{pid}", "status": status, "paid_at": paid_at})

        upgrade(database_url)

        rows = export(database_url)
        assert [(r["confirmation_number"], r["amount"], r["paid_at"], r["type"], r["entry_id"]) for r in rows] == [
            ("10000001", "25.00", "2026-11-16T15:00:00Z", "payment", "pay_1"),
            ("10000002", "25.00", "2026-11-17T15:00:00Z", "payment", "pay_2"),
        ]
    finally:
        with engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
