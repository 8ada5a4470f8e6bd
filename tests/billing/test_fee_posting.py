"""A convenience fee in the posting file: its own ``fee`` row beside the payment, and money going back
(refunds, disputes) taken from the bill first and from the fee last, so every file still adds up to
what the co-op keeps and the member's balance only ever moves by the bill's money.

Payments go through the one charge step against Stripe's fake; refunds through the console's refund
function or Stripe's dashboard; disputes arrive as Stripe's signed events.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers import send_event

import ivr.all_models  # noqa: F401
from ivr.cli import main
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import ledger, refunds
from ivr.money.charge import APPROVED, charge_token

ZONE = "America/New_York"
MONDAY = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
WEDNESDAY = MONDAY + timedelta(days=2)
FRIDAY = MONDAY + timedelta(days=4)
WEEK = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]
FEE = 250


@pytest.fixture
def account_id(make_account):
    return make_account(balance_cents=12345)


@pytest.fixture
def pay(app, stripe_api, monkeypatch):
    """Pay ``cents`` and a ``fee`` through the one charge step on Monday; returns (payment id, PaymentIntent id)."""

    def pay(account_id, cents, fee=FEE, key="CAmonday:1"):
        monkeypatch.setattr(ledger, "utcnow", lambda: MONDAY)
        with app.app_context():
            account = db.session.get(Account, account_id)
            outcome = charge_token(account, cents, key, "pm_card_visa", channel="ivr", call_sid=None,
                                   language="en", caller="+12025550143", fee_cents=fee)
            db.session.commit()
            assert outcome.status == APPROVED
            return outcome.payment.id, outcome.payment.stripe_payment_intent

    return pay


def export(database_url, day=None):
    args = ["payments", "export"] + (["--date", day.isoformat()] if day else [])
    result = CliRunner().invoke(main, args, env={"DATABASE_URL": database_url, "ORG_TIMEZONE": ZONE})
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def rows_of(rows):
    return [(r["type"], r["amount"], r["entry_id"], r["refunded_amount"]) for r in rows]


def cents(amount: str) -> int:
    whole, _, part = amount.lstrip("-").partition(".")
    value = int(whole) * 100 + int(part)
    return -value if amount.startswith("-") else value


def balance(app, account_id):
    with app.app_context():
        return db.session.get(Account, account_id).balance_cents


def payment(app, payment_id):
    with app.app_context():
        return db.session.get(Payment, payment_id)


def test_a_fee_has_its_own_row_and_the_stripe_charge_is_both(app, database_url, stripe_api, pay, account_id):
    payment_id, _ = pay(account_id, 5000)

    assert [i["amount"] for i in stripe_api.successful_charges] == [5250]
    assert rows_of(export(database_url, WEEK[0])) == [
        ("payment", "50.00", f"pay_{payment_id}", "0.00"),
        ("fee", "2.50", f"pay_{payment_id}:fee", "0.00"),
    ]
    assert balance(app, account_id) == 12345 - 5000
    assert export(database_url, WEEK[0]) == export(database_url, WEEK[0])  # the same rows every time


def test_a_full_refund_gives_back_the_fee_too_on_a_row_of_its_own(app, client, database_url, stripe_api, pay,
                                                                   account_id):
    payment_id, intent = pay(account_id, 5000)
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        assert refunds.remaining_cents(db.session.get(Payment, payment_id)) == 5250
        outcome = refunds.refund(db.session.get(Payment, payment_id), None, "Alex Admin", request_number=1)
    assert outcome.status == refunds.REFUNDED and outcome.amount_cents == 5250
    (refund,) = stripe_api.refunds
    assert refund["amount"] == 5250  # one Stripe refund of the whole charge
    send_event(client, "refund.created", refund)  # Stripe reports it afterwards: nothing more
    send_event(client, "charge.refunded", {"id": refund["charge"], "object": "charge", "amount": 5250,
                                           "amount_refunded": 5250, "payment_intent": intent, "refunded": True})

    assert rows_of(export(database_url, WEEK[2])) == [
        ("refund", "-50.00", f"re_{refund['id']}", "50.00"),
        ("fee", "-2.50", f"re_{refund['id']}:fee", "2.50"),
    ]
    everything = export(database_url)
    assert sum(cents(r["amount"]) for r in everything) == 0
    assert balance(app, account_id) == 12345  # owed again: the bill's money, not the fee
    done = payment(app, payment_id)
    assert (done.status, done.refunded_cents) == ("refunded", 5250)


def test_refunding_the_amount_keeps_the_fee_and_the_fee_goes_back_last(app, database_url, stripe_api, pay, account_id):
    payment_id, _ = pay(account_id, 5000)
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        refunds.refund(db.session.get(Payment, payment_id), 5000, "Alex Admin", request_number=1)
    first = stripe_api.refunds[0]["id"]
    assert rows_of(export(database_url, WEEK[2])) == [("refund", "-50.00", f"re_{first}", "50.00")]
    assert payment(app, payment_id).status == "refunded"  # the bill's payment is wholly refunded
    assert balance(app, account_id) == 12345

    with app.app_context():
        assert refunds.remaining_cents(db.session.get(Payment, payment_id)) == FEE
        refunds.refund(db.session.get(Payment, payment_id), None, "Alex Admin", request_number=2)
    second = stripe_api.refunds[1]["id"]
    assert rows_of(export(database_url, WEEK[2]))[1:] == [("fee", "-2.50", f"re_{second}:fee", "2.50")]
    assert balance(app, account_id) == 12345  # the fee was never on the bill
    assert sum(cents(r["amount"]) for r in export(database_url)) == 0


def test_a_dashboard_refund_across_the_last_of_the_bill_splits_into_bill_and_fee(app, client, database_url, stripe_api,
                                                                                  pay, account_id):
    payment_id, intent = pay(account_id, 5000)
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        refunds.refund(db.session.get(Payment, payment_id), 1000, "Alex Admin", request_number=1)
    refund = stripe_api.add_refund(intent, 4100)  # 40.00 of the bill is left: 1.00 of this is the fee
    for _ in range(2):
        send_event(client, "refund.created", refund)

    assert rows_of(export(database_url, WEEK[2]))[1:] == [
        ("refund", "-40.00", f"re_{refund['id']}", "50.00"),
        ("fee", "-1.00", f"re_{refund['id']}:fee", "1.00"),
    ]
    assert balance(app, account_id) == 12345
    assert sum(cents(r["amount"]) for r in export(database_url)) == 5250 - 1000 - 4100  # the fee's 1.50 kept


def dispute(intent, status, *, amount, withdrawn=None, reinstated=None, dispute_id="dp_1"):
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


def test_a_dispute_of_the_whole_charge_takes_bill_and_fee_and_a_won_one_gives_both_back(app, client, database_url,
                                                                                       pay, account_id):
    _, intent = pay(account_id, 5000)
    opened = dispute(intent, "needs_response", amount=5250, withdrawn=WEDNESDAY)
    send_event(client, "charge.dispute.created", opened)
    send_event(client, "charge.dispute.funds_withdrawn", opened)  # the same withdrawal, reported again
    assert balance(app, account_id) == 12345  # the bill is owed again; the fee never was
    won = dispute(intent, "won", amount=5250, withdrawn=WEDNESDAY, reinstated=FRIDAY)
    send_event(client, "charge.dispute.closed", won)
    send_event(client, "charge.dispute.closed", won)

    assert [(r["type"], r["amount"], r["entry_id"]) for r in export(database_url, WEEK[2])] == [
        ("dispute", "-50.00", "dp_dp_1"), ("fee", "-2.50", "dp_dp_1:fee")]
    assert [(r["type"], r["amount"], r["entry_id"]) for r in export(database_url, WEEK[4])] == [
        ("dispute_won", "50.00", "dw_dp_1"), ("fee", "2.50", "dw_dp_1:fee")]
    assert sum(cents(r["amount"]) for r in export(database_url)) == 5250
    assert balance(app, account_id) == 12345 - 5000


def test_the_files_add_up_with_fees_and_without(app, client, database_url, stripe_api, pay, make_account, account_id):
    other = make_account(account_number="55501234", phone="+12025550188", balance_cents=90000)
    with_fee, with_fee_intent = pay(account_id, 5000, key="CA1:1")
    without_fee, _ = pay(other, 30000, fee=0, key="CA2:1")
    _, lost_intent = pay(other, 12000, key="CA3:1")
    stripe_api.now = lambda: int(WEDNESDAY.timestamp())
    with app.app_context():
        refunds.refund(db.session.get(Payment, with_fee), 5100, "Alex Admin")
        refunds.refund(db.session.get(Payment, without_fee), None, "Alex Admin")
    send_event(client, "charge.dispute.created", dispute(lost_intent, "needs_response", amount=12250,
                                                         withdrawn=WEDNESDAY, dispute_id="dp_lost"))
    send_event(client, "charge.dispute.closed", dispute(lost_intent, "lost", amount=12250, withdrawn=WEDNESDAY,
                                                        dispute_id="dp_lost"))

    files = [export(database_url, day) for day in WEEK]

    charged = sum(i["amount"] for i in stripe_api.successful_charges)
    refunded = sum(r["amount"] for r in stripe_api.refunds)
    assert charged == 5250 + 30000 + 12250 and refunded == 5100 + 30000
    assert sum(cents(r["amount"]) for rows in files for r in rows) == charged - refunded - 12250
    fees = sum(cents(r["amount"]) for rows in files for r in rows if r["type"] == "fee")
    assert fees == 250 - 100 + 250 - 250  # kept: what is left of the first fee
    everything = export(database_url)
    assert len({r["entry_id"] for r in everything}) == len(everything)
    assert balance(app, account_id) == 12345 and balance(app, other) == 90000 - 12000 + 12000
