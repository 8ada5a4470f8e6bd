"""Agents see whether an account has a card on file and can forget it: detached at Stripe, audited."""

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from agent_fixtures import app_config, fake_twilio  # noqa: F401  (fixtures)
from agent_support import audit_rows, bearer, new_agent
from helpers import ZIP, CallActions

from ivr.extensions import db
from ivr.money.models import SavedCard

NUMBER = {"account_number": "12345-001"}
SAVED_AT = datetime(2026, 12, 3, 19, 5, tzinfo=UTC)


@pytest.fixture
def key(app):
    return new_agent(app, "Robin")


@pytest.fixture
def account_with_card(app, make_account):
    account_id = make_account()
    with app.app_context():
        db.session.add(SavedCard(account_id=account_id, stripe_customer="cus_NffrFeUfNV2Hib",
                                 stripe_payment_method="pm_1Q0PsIJvEtkwdCNYMSaVuRz6", card_brand="visa",
                                 card_last4="4242", saved_at=SAVED_AT, consent_channel="ivr",
                                 consent_words="To save this card for next time, press 1."))
        db.session.commit()
    return account_id


def cards(app):
    with app.app_context():
        return db.session.scalars(sa.select(SavedCard)).all()


def test_lookup_shows_the_card_on_file_by_brand_last_four_and_when_never_stripes_ids(client, key,
                                                                                     account_with_card):
    found = client.post("/api/agent/accounts/lookup", json=NUMBER, headers=bearer(key))

    assert found.status_code == 200
    assert found.get_json()["saved_card"] == {"brand": "visa", "last4": "4242",
                                              "saved_at": "2026-12-03T19:05:00+00:00", "channel": "ivr"}
    body = found.get_data(as_text=True)
    assert "cus_" not in body and "pm_" not in body


def test_lookup_says_no_card_when_there_is_none(client, key, make_account):
    make_account()
    found = client.post("/api/agent/accounts/lookup", json=NUMBER, headers=bearer(key))
    assert found.get_json()["saved_card"] is None


def test_an_agent_forgets_the_card_it_is_detached_at_stripe_and_audited(app, client, key, account_with_card,
                                                                         stripe_api):
    forgot = client.post("/api/agent/accounts/saved-card/forget", json=NUMBER, headers=bearer(key))

    assert forgot.status_code == 200
    assert forgot.get_json() == {"account": "…5001", "forgotten": True, "saved_card": None}
    assert cards(app) == []
    assert stripe_api.detached == ["pm_1Q0PsIJvEtkwdCNYMSaVuRz6"]
    entry = audit_rows(app)[-1]
    assert (entry.agent_name, entry.action, entry.outcome) == ("Robin", "saved_card.forget", "forgotten")
    assert entry.account == "…5001" and entry.detail == "visa ending 4242"

    again = client.post("/api/agent/accounts/saved-card/forget", json=NUMBER, headers=bearer(key))
    assert again.status_code == 200 and again.get_json()["forgotten"] is False  # a second click
    assert stripe_api.detached == ["pm_1Q0PsIJvEtkwdCNYMSaVuRz6"]
    assert audit_rows(app)[-1].outcome == "none"


def test_the_next_call_after_an_agent_forgot_the_card_goes_straight_to_card_entry(app, client, key,
                                                                                  account_with_card):
    client.post("/api/agent/accounts/saved-card/forget", json=NUMBER, headers=bearer(key))

    call = CallActions(client)
    call.start()
    call.silence()
    call.press("1")
    call.press(ZIP)
    call.press("1")
    assert call.root.xpath("./Pay") and "ending in 4 2 4 2" not in call.said()


def test_forgetting_needs_a_key_a_known_account_and_the_consoles_csrf_token(app, client, key, account_with_card,
                                                                           stripe_api):
    assert client.post("/api/agent/accounts/saved-card/forget", json=NUMBER).status_code == 401
    unknown = client.post("/api/agent/accounts/saved-card/forget", json={"account_number": "99999999"},
                          headers=bearer(key))
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "unknown_account"
    assert audit_rows(app)[-1].outcome == "404"
    bad = client.post("/api/agent/accounts/saved-card/forget", json={"account": "12345001"}, headers=bearer(key))
    assert bad.status_code == 422

    page = client.get("/agent").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/agent/login", data={"csrf_token": token, "name": "Robin", "key": key})
    forged = client.post("/api/agent/accounts/saved-card/forget", json=NUMBER)  # cookie, no token
    assert forged.status_code == 403
    assert len(cards(app)) == 1 and stripe_api.detached == []

    console = client.get("/agent").get_data(as_text=True)
    assert 'id="forget-card"' in console and "Card on file" in console
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', console).group(1)
    done = client.post("/api/agent/accounts/saved-card/forget", json=NUMBER, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and cards(app) == []


def test_stripe_unreachable_still_forgets_the_card_here(app, client, key, account_with_card, stripe_api, caplog):
    stripe_api.rsps.replace("POST", re.compile(r"https://api\.stripe\.com/v1/payment_methods/[^/]+/detach$"),
                            status=503, json={"error": {"type": "api_error"}})

    forgot = client.post("/api/agent/accounts/saved-card/forget", json=NUMBER, headers=bearer(key))

    assert forgot.status_code == 200 and forgot.get_json()["forgotten"] is True
    assert cards(app) == []  # never charged again by us, whatever Stripe keeps
    assert "could not detach a forgotten card at Stripe" in caplog.text
