"""The demo shows a card on file: Grace's account has a saved Visa, and her call pays with it."""

import io
from datetime import date

import pytest
import sqlalchemy as sa
from helpers import CallActions

from ivr.billing.accounts_csv import import_accounts
from ivr.demo import SAVED_CARD_ACCOUNT, SAVED_CARD_CALL, demo_accounts_csv, keep_demo_card
from ivr.extensions import db
from ivr.models import Payment
from ivr.money.models import SavedCard


@pytest.fixture
def app_config(app_config):
    app_config.update(PAYMENT_GATEWAY="sandbox")  # as `ivr demo` runs
    return app_config


def test_the_demo_seeds_one_saved_visa_and_the_banners_call_pays_with_it(app, client):
    with app.app_context():
        import_accounts(db.session, io.StringIO(demo_accounts_csv(date.today())))
        keep_demo_card()
        keep_demo_card()  # running the demo again is safe
        (card,) = db.session.scalars(sa.select(SavedCard)).all()
        assert card.account.account_number == SAVED_CARD_ACCOUNT
        assert (card.card_brand, card.card_last4, card.consent_channel) == ("visa", "4242", "demo")

    keys = SAVED_CARD_CALL.split('--keys "')[1].rstrip('"').split()
    call = CallActions(client, from_=SAVED_CARD_CALL.split("--from ")[1].split()[0])
    call.start()
    for key in keys[:-1]:
        call.silence() if key == "_" else call.press(key)
    assert "with your Visa ending in 4 2 4 2, press 1." in call.said()
    call.press(keys[-1])

    assert "Approved:" in call.said() and call.root.xpath("./Pay") == []
    with app.app_context():
        (payment,) = db.session.scalars(sa.select(Payment)).all()
    assert payment.status == "succeeded" and payment.attempt_key.startswith("saved:")
