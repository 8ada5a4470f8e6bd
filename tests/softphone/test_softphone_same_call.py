"""``ivr call`` walks every path of "on the same call" against real ``ivr serve`` and ``ivr worker``
processes holding the demo accounts: the past-due amount, the last payments, another account, and a
convenience fee, by keys alone."""

import csv
import io
import json

import pytest
from live import LiveServer, live_env  # noqa: F401  (a fixture)
from live import ivr as run_ivr

pytestmark = pytest.mark.e2e

VISA = "4242424242424242,12/30,123,30301"
HAROLD = "+12025550112"  # 356.90, of which 142.35 is past due
ROSA = "+12025550178"  # a Spanish-speaking member, 131.06


def place_call(server, *args):
    result = run_ivr("call", "--url", server.url, "--json", *args, env=server.env)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["problems"] == []
    return " ".join(say["text"] for step in transcript["steps"] for say in step["says"])


def test_past_due_history_and_another_account_by_keys(live_env):
    with LiveServer(live_env) as server:
        # 3: the last payments (none yet); 1: the menu; 2: the past-due amount; then 2: another account,
        # keyed (the only account on Harold's phone is paid) with its own last four.
        said = place_call(server, "--from", HAROLD, "--keys", "_ 1 34567001# 3 1 2 2 12345001# 0143 1",
                          "--card", VISA, "--card", VISA)
        again = place_call(server, "--from", HAROLD, "--keys", "_ 1 34567001# 3")

    assert "Of that, one hundred forty-two dollars and thirty-five cents is past due." in said
    assert ("To pay the past-due one hundred forty-two dollars and thirty-five cents, press 2. "
            "Recent payments, 3. Another amount, 4.") in said
    assert "There are no card payments on record." in said
    assert "Approved: one hundred forty-two dollars and thirty-five cents." in said
    assert "Another account, 2." in said
    assert "Enter the account number" in said
    assert "Approved: eighty-four dollars and seventeen cents." in said
    assert "Your last payment. On " in again
    assert "one hundred forty-two dollars and thirty-five cents, by phone." in again
    assert "Your balance is two hundred fourteen dollars and fifty-five cents" in again

    sent = run_ivr("worker", "--once", env=live_env)
    assert sent.returncode == 0, sent.stderr
    assert "$142.35" in sent.stdout and "account ending 7001" in sent.stdout
    assert "$84.17" in sent.stdout and "account ending 5001" in sent.stdout


def test_a_spanish_caller_accepts_the_convenience_fee_by_keys(live_env):
    env = dict(live_env, CONVENIENCE_FEE_CENTS="250")
    with LiveServer(env) as server:
        said = place_call(server, "--from", ROSA, "--keys", "_ 1 20010 1 1", "--card", VISA)

    assert ("Pagar con tarjeta por teléfono tiene un cargo de dos dólares con cincuenta centavos; se cobrarán "
            "ciento treinta y tres dólares con cincuenta y seis centavos a su tarjeta") in said
    assert ("Pago aprobado: ciento treinta y un dólares con seis centavos, más el cargo de dos dólares con "
            "cincuenta centavos.") in said
    sent = run_ivr("worker", "--once", env=env)
    assert "cargo por servicio de $2.50 ($133.56 en total)" in sent.stdout
    export = run_ivr("payments", "export", env=env)
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [(r["account_number"], r["amount"], r["type"]) for r in rows] == [
        ("23456001", "131.06", "payment"), ("23456001", "2.50", "fee")]
