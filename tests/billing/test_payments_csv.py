import csv
import io
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner

from ivr.billing.payments_csv import export_payments
from ivr.cli import main
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import ledger
from ivr.money.movements import payment_movement
from payments import ChargeResult

CONTRACT_COLUMNS = [
    "confirmation_number",
    "account_number",
    "amount",
    "currency",
    "paid_at",
    "channel",
    "card_brand",
    "card_last4",
    "stripe_payment_intent",
    "status",
]


@pytest.fixture
def account(session):
    account = Account(
        account_number="12345001",
        name="Dana Whitfield",
        phone="+12025550143",
        balance_cents=8417,
        due_date=date(2026, 12, 1),
        language="en",
    )
    session.add(account)
    session.commit()
    return account


@pytest.fixture
def pay(session, account):
    made = []

    def pay(paid_at, *, status="succeeded", amount_cents=5000, brand="visa", **fields):
        n = len(made) + 1
        payment = Payment(
            attempt_key=f"attempt-{n}",
            confirmation_number=f"C{n:07d}",
            account=account,
            amount_cents=amount_cents,
            status=status,
            card_brand=brand,
            card_last4="4242",
            stripe_payment_intent=f"pi_{n:024d}",
            paid_at=paid_at,
            **fields,
        )
        session.add(payment)
        session.commit()
        # The file is read from the money-movements ledger: the row ledger.settle writes for a settled payment.
        session.add(payment_movement(payment))
        session.commit()
        made.append(payment)
        return payment

    return pay


def export(session, **kwargs) -> list[dict[str, str]]:
    out = io.StringIO()
    export_payments(session, out, **kwargs)
    out.seek(0)
    return list(csv.DictReader(out))


def test_export_header_and_row_format(session, pay):
    pay(
        datetime(2026, 11, 22, 14, 5, 9, 123456, tzinfo=UTC),
        amount_cents=123405,
        brand="Visa",
        channel="agent",
    )
    out = io.StringIO()

    count = export_payments(session, out)

    lines = out.getvalue().splitlines()
    assert lines[0].split(",")[:10] == CONTRACT_COLUMNS
    assert count == 1
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["confirmation_number"] == "C0000001"
    assert row["account_number"] == "12345001"
    assert row["amount"] == "1234.05"
    assert row["currency"] == "USD"
    assert row["paid_at"] == "2026-11-22T14:05:09Z"
    assert row["channel"] == "agent"
    assert row["card_brand"] == "visa"
    assert row["card_last4"] == "4242"
    assert row["stripe_payment_intent"] == "pi_" + "0" * 23 + "1"
    assert row["status"] == "succeeded"
    assert (row["type"], row["entry_id"]) == ("payment", "pay_1")


@pytest.mark.parametrize(
    ("cents", "amount"), [(5, "0.05"), (50, "0.50"), (100, "1.00"), (99999, "999.99")]
)
def test_export_amount_keeps_two_decimals(session, pay, cents, amount):
    pay(datetime(2026, 11, 22, 12, tzinfo=UTC), amount_cents=cents)

    assert export(session)[0]["amount"] == amount


@pytest.mark.parametrize(
    ("brand", "expected"),
    [("MasterCard", "mastercard"), ("American Express", "amex"), ("DISCOVER", "discover")],
)
def test_export_card_brand_lower_case(session, pay, brand, expected):
    pay(datetime(2026, 11, 22, 12, tzinfo=UTC), brand=brand)

    assert export(session)[0]["card_brand"] == expected


def test_export_only_money_that_moved(app, make_account):
    # Attempts as every channel leaves them: approved, declined, processor unreachable, never answered.
    with app.app_context():
        account = db.session.get(Account, make_account())
        attempts = {}
        for key in ("approved", "declined", "unavailable", "pending"):
            attempts[key] = ledger.open_attempt(attempt_key=key, account=account, amount_cents=2500, call_sid=None,
                                                channel="ivr", language="en", caller=None)
        db.session.commit()
        ledger.settle(attempts["approved"], ChargeResult(True, "pi_approved", card_brand="visa", card_last4="4242"))
        ledger.settle(attempts["declined"], ChargeResult(False, "pi_declined", decline_code="insufficient_funds"))
        ledger.mark_unavailable(attempts["unavailable"])
        db.session.commit()

        rows = export(db.session)

    assert [(row["stripe_payment_intent"], row["amount"], row["type"]) for row in rows] == [("pi_approved", "25.00", "payment")]


def test_export_refunded_amount_follows_contract_columns(session, pay):
    pay(
        datetime(2026, 11, 22, 12, tzinfo=UTC),
        status="refunded",
        amount_cents=5000,
        refunded_cents=2000,
    )

    row = export(session)[0]

    assert (row["amount"], row["refunded_amount"]) == ("50.00", "20.00")


def test_export_is_ordered_by_paid_at(session, pay):
    pay(datetime(2026, 11, 22, 15, tzinfo=UTC))
    pay(datetime(2026, 11, 20, 9, tzinfo=UTC))
    pay(datetime(2026, 11, 22, 8, tzinfo=UTC))

    rows = export(session)

    assert [row["paid_at"] for row in rows] == [
        "2026-11-20T09:00:00Z",
        "2026-11-22T08:00:00Z",
        "2026-11-22T15:00:00Z",
    ]


def test_export_date_in_utc(session, pay):
    pay(datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC))
    pay(datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC))
    pay(datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC))
    pay(datetime(2026, 11, 23, 0, 0, 0, tzinfo=UTC))

    rows = export(session, on_date=date(2026, 11, 22))

    assert [row["paid_at"] for row in rows] == ["2026-11-22T00:00:00Z", "2026-11-22T23:59:59Z"]


def test_export_date_in_org_timezone_across_daylight_saving_end(session, pay):
    # 2026-11-01 is 25 hours long in New York: 04:00Z to 05:00Z the next day.
    pay(datetime(2026, 11, 1, 3, 59, tzinfo=UTC))  # 23:59 EDT on Oct 31
    pay(datetime(2026, 11, 1, 4, 0, tzinfo=UTC))  # 00:00 EDT
    pay(datetime(2026, 11, 2, 4, 30, tzinfo=UTC))  # 23:30 EST, still Nov 1
    pay(datetime(2026, 11, 2, 5, 0, tzinfo=UTC))  # 00:00 EST on Nov 2

    rows = export(session, on_date=date(2026, 11, 1), tz="America/New_York")

    assert [row["paid_at"] for row in rows] == ["2026-11-01T04:00:00Z", "2026-11-02T04:30:00Z"]


def test_export_of_nothing_is_just_the_header(session):
    out = io.StringIO()

    assert export_payments(session, out, on_date=date(2026, 11, 22)) == 0
    assert out.getvalue().splitlines() == [",".join(CONTRACT_COLUMNS) + ",refunded_amount,type,entry_id"]


def test_export_command_uses_org_timezone_day(session, pay, database_url):
    pay(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 21:00 on Nov 22 in New York
    pay(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))  # 01:00 on Nov 23 in New York
    env = {"DATABASE_URL": database_url, "ORG_TIMEZONE": "America/New_York"}

    result = CliRunner().invoke(main, ["payments", "export", "--date", "2026-11-22"], env=env)

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["paid_at"] for row in rows] == ["2026-11-23T02:00:00Z"]


def test_export_command_refuses_a_malformed_date(session, database_url):
    result = CliRunner().invoke(main, ["payments", "export", "--date", "22/11/2026"], env={"DATABASE_URL": database_url})

    assert result.exit_code == 2
    assert "22/11/2026" in result.stderr
