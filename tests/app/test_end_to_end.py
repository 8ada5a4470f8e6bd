"""End to end: real ``ivr serve`` (gunicorn) and ``ivr worker`` processes on loopback, called by ``ivr call``."""

import json
import re

import pytest
from live import LiveServer, live_env  # noqa: F401  (a fixture)
from live import ivr as run_ivr

import ivr.all_models  # noqa: F401

pytestmark = pytest.mark.e2e

VISA = "4242424242424242,12/30,123,30301"
INSUFFICIENT_FUNDS = "4000000000009995,12/30,123,30301"
DANA = "+12025550143"  # two demo accounts on this phone
ROSA = "+12025550178"  # a Spanish-speaking member


def place_call(server_url, *args, env):
    result = run_ivr("call", "--url", server_url, "--json", *args, env=env)
    transcript = json.loads(result.stdout)
    said = " ".join(say["text"] for step in transcript["steps"] for say in step["says"])
    return result, transcript, said


def test_full_payment_then_receipt_from_the_worker_and_a_posting_file(live_env):
    with LiveServer(live_env, workers=2) as server:
        result, transcript, said = place_call(server.url, "--from", DANA, "--keys", "_ 1 20011 1", "--card", VISA, env=server.env)
    assert result.returncode == 0, result.stderr
    assert transcript["problems"] == []
    assert "Approved: eighty-four dollars and seventeen cents." in said
    confirmation = re.search(r"Confirmation number ((?:\d ){7}\d)", said).group(1).replace(" ", "")
    assert "4242424242424242" not in result.stdout and "123,30301" not in result.stdout

    sent = run_ivr("worker", "--once", env=live_env)
    assert sent.returncode == 0, sent.stderr
    assert f"Confirmation {confirmation}" in sent.stdout and "$84.17" in sent.stdout
    again = run_ivr("worker", "--once", env=live_env)
    assert confirmation not in again.stdout  # sent once, never twice

    export = run_ivr("payments", "export", env=live_env)
    assert export.stdout.splitlines()[0].startswith("confirmation_number,account_number,amount,currency,paid_at")
    assert re.search(rf"^{confirmation},12345001,84\.17,", export.stdout, re.M)


def test_decline_then_success(live_env):
    with LiveServer(live_env) as server:
        result, transcript, said = place_call(
            server.url, "--from", DANA, "--keys", "_ 2 20011 1 1", "--card", INSUFFICIENT_FUNDS, "--card", VISA,
            env=server.env,
        )
    assert result.returncode == 0, result.stderr
    assert "declined for insufficient funds" in said
    assert "Approved: two hundred twelve dollars and fifty cents." in said


def test_spanish_call(live_env):
    with LiveServer(live_env) as server:
        result, transcript, said = place_call(server.url, "--from", ROSA, "--keys", "_ 1 20010 1", "--card", VISA, env=server.env)
    assert result.returncode == 0, result.stderr
    assert "Su saldo es de ciento treinta y un dólares con seis centavos" in said
    assert "Pago aprobado" in said
    languages = {say["language"] for step in transcript["steps"][3:] for say in step["says"]}
    assert languages == {"es-US"}


def test_two_server_processes_answer_alternate_webhooks_of_one_call(live_env):
    with LiveServer(live_env) as first:
        second_env = dict(live_env, PUBLIC_BASE_URL=first.url)  # one public name, as behind a load balancer
        with LiveServer(second_env) as second:
            result, transcript, said = place_call(
                first.url, "--from", DANA, "--keys", "_ 1 20011 1", "--card", VISA,
                "--via", first.url, "--via", second.url, env=first.env,
            )
            sent_to = {step["sent_to"].split("/twilio")[0] for step in transcript["steps"]}
    assert result.returncode == 0, result.stderr
    assert sent_to == {first.url, second.url}
    assert "Approved:" in said
    assert "/twilio/voice/step" in first.output() and "/twilio/voice/step" in second.output()


def test_pay_by_text_with_a_saved_card_from_the_softphone(live_env):
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from ivr.models import Account
    from ivr.money.models import SavedCard

    engine = sa.create_engine(live_env["DATABASE_URL"])
    with Session(engine) as session:  # Dana kept her Visa after paying account 12345001 by phone
        account_id = session.scalar(sa.select(Account.id).where(Account.account_number == "12345001"))
        session.add(SavedCard(account_id=account_id, stripe_customer="cus_sandbox_dana", stripe_payment_method="pm_card_visa",
                              card_brand="visa", card_last4="4242", consent_channel="ivr",
                              consent_words="To save this card for next time, press 1."))
        session.commit()
    engine.dispose()

    with LiveServer(live_env) as server:
        result = run_ivr("call", "--url", server.url, "--from", DANA, "--text", "PAY", "--text", "PAY 5001",
                         "--text", "YES", "--text", "YES", "--json", env=server.env)
    assert result.returncode == 0, result.stderr
    engine = sa.create_engine(live_env["DATABASE_URL"])
    with engine.connect() as conn:
        confirmation = conn.scalar(sa.text("SELECT confirmation_number FROM payments WHERE channel = 'sms'"))
    engine.dispose()
    org = "Riverbend Electric Cooperative"
    assert [step["replies"] for step in json.loads(result.stdout)["steps"]] == [
        [f"{org}: which account? Reply PAY 5001 or PAY 5002."],
        [f"{org}: Reply YES within 10 minutes to pay $84.17 with your Visa ending in 4242 for account ending 5001."],
        [f"{org}: thank you, your payment went through. Your receipt follows."],
        [f"{org}: that payment was already made (confirmation {confirmation}). Nothing more was charged."],
    ]

    sent = run_ivr("worker", "--once", env=live_env)
    assert sent.returncode == 0, sent.stderr
    assert f"Confirmation {confirmation}" in sent.stdout and "$84.17" in sent.stdout
    export = run_ivr("payments", "export", env=live_env)
    assert re.search(rf"^{confirmation},12345001,84\.17,USD,[^,]+,sms,visa,4242,", export.stdout, re.M)
