"""``ivr call`` against a real ``ivr serve``: save a card on one call, pay with it on the next, forget it on a third."""

import json

import pytest
import sqlalchemy as sa
from live import LiveServer, live_env  # noqa: F401  (a fixture)
from live import ivr as run_ivr

import ivr.all_models  # noqa: F401
from ivr.models import Account, Payment
from ivr.money.models import SavedCard

pytestmark = pytest.mark.e2e

DANA = "+12025550143"  # two demo accounts on this phone; the second (12345-002) owes $212.50
VISA = "4242424242424242,12/30,123,30301"


def place_call(server, *args):
    result = run_ivr("call", "--url", server.url, "--json", "--from", DANA, *args, env=server.env)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["problems"] == []
    said = " ".join(say["text"] for step in transcript["steps"] for say in step["says"])
    return transcript, said


def rows(database_url, model):
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(model.__table__)).mappings().all()
    finally:
        engine.dispose()


def test_a_card_saved_on_one_call_pays_the_next_without_card_entry_and_is_forgotten_with_9(live_env):  # noqa: F811
    with LiveServer(live_env) as server:
        # 1: the second account, $100.00 keyed on the keypad; after the confirmation, 1 saves the card.
        transcript, said = place_call(server, "--keys", "_ 2 20011 2 100# 1 _ 1", "--card", VISA)
        assert len([step for step in transcript["steps"] if step["purpose"] == "Pay action"]) == 1
        assert "Approved: one hundred dollars." in said
        assert "To save this card for next time, press 1." in said and "Your card is saved." in said

        # 2: $50.00 with the card on file: no --card is given, so a <Pay> would have hung up.
        transcript, said = place_call(server, "--keys", "_ 2 20011 2 50# 1 1")
        assert "To pay fifty dollars with your Visa ending in 4 2 4 2, press 1." in said
        assert "Approved: fifty dollars." in said
        assert [step for step in transcript["steps"] if step["purpose"] == "Pay action"] == []

        # 3: the rest of the balance is offered with the card; 9 forgets it, 9 ends the call.
        _, said = place_call(server, "--keys", "_ 2 20011 1 9 9")
        assert "To pay sixty-two dollars and fifty cents with your Visa ending in 4 2 4 2" in said
        assert "Your saved card is removed. We won't charge it again." in said

    database_url = live_env["DATABASE_URL"]
    assert rows(database_url, SavedCard) == []
    paid = [p for p in rows(database_url, Payment) if p["status"] == "succeeded"]
    assert sorted(p["amount_cents"] for p in paid) == [5000, 10000]
    on_file = next(p for p in paid if p["amount_cents"] == 5000)
    assert on_file["attempt_key"].startswith("saved:") and on_file["stripe_customer"].startswith("cus_")
    (account,) = [a for a in rows(database_url, Account) if a["account_number"] == "12345002"]
    assert account["balance_cents"] == 21250 - 15000
