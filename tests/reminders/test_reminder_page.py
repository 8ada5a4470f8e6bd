"""The reminder link: signed expiring tokens, the `/r/<token>` page, "Call me now", limits."""

# Fixtures are imported from reminder_fixtures, so their names reappear as arguments.
# ruff: noqa: F811

import html
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import BASE
from reminder_fixtures import MEMBER, NOON_UTC, SECRET, call_me_now, clock, csrf_of, fake_twilio, link  # noqa: F401

from ivr.extensions import db
from ivr.models import Account
from ivr.reminders import callbacks as callbacks_module
from ivr.reminders import tokens
from ivr.reminders.models import Callback


@pytest.fixture
def app_config(app_config):
    app_config["SECRET_KEY"] = SECRET
    return app_config


def shown(response) -> str:
    """The page as the member reads it (entities such as &#39; decoded)."""
    return html.unescape(response.text)


def callbacks(app) -> list[Callback]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Callback).order_by(Callback.id)))


# --- tokens --------------------------------------------------------------------------------------


def test_token_is_short_enough_for_a_text():
    token = tokens.issue(SECRET, 2**32 - 1, MEMBER, NOON_UTC)
    assert len(token) == 24 and re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_token_round_trip_names_the_account():
    token = tokens.issue(SECRET, 42, MEMBER, NOON_UTC)
    claims = tokens.verify(
        SECRET, token, MEMBER, NOON_UTC + timedelta(hours=1), timedelta(hours=72)
    )
    assert claims.account_id == 42


@pytest.mark.parametrize("position", [0, 5, 12, 23])
def test_any_changed_character_is_rejected(position):
    token = tokens.issue(SECRET, 42, MEMBER, NOON_UTC)
    changed = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    with pytest.raises(tokens.BadToken):
        tokens.verify(SECRET, changed, MEMBER, NOON_UTC, timedelta(hours=72))


def test_token_is_bound_to_the_phone_and_the_key():
    token = tokens.issue(SECRET, 42, MEMBER, NOON_UTC)
    with pytest.raises(tokens.BadToken):
        tokens.verify(SECRET, token, "+12025550199", NOON_UTC, timedelta(hours=72))
    with pytest.raises(tokens.BadToken):
        tokens.verify("another-secret", token, MEMBER, NOON_UTC, timedelta(hours=72))


def test_token_expires_after_its_lifetime():
    token = tokens.issue(SECRET, 42, MEMBER, NOON_UTC)
    lifetime = timedelta(hours=72)
    tokens.verify(SECRET, token, MEMBER, NOON_UTC + lifetime, lifetime)
    with pytest.raises(tokens.ExpiredToken):
        tokens.verify(SECRET, token, MEMBER, NOON_UTC + lifetime + timedelta(minutes=1), lifetime)


# --- the page ------------------------------------------------------------------------------------


def test_page_shows_org_masked_account_amount_and_due_date(app, client, make_account, clock):
    account_id = make_account(account_number="98765001")
    response = client.get(link(app, account_id))
    body = shown(response)
    assert response.status_code == 200
    assert "Riverbend Electric Cooperative" in body
    assert "Account ending in 5001" in body
    assert '<dd id="amount">$123.45</dd>' in body
    assert '<dd id="due">December 5, 2026</dd>' in body
    assert ">Call me now</button>" in body
    assert "call (500) 555-0006" in body  # how to pay otherwise: the pay line
    assert "98765001" not in body and "+12025550143" not in body and "555-0143" not in body
    assert "<script" not in body


def test_page_is_in_the_members_language(app, client, make_account, clock):
    account_id = make_account(language="es", balance_cents=123456)
    body = shown(client.get(link(app, account_id)))
    assert '<html lang="es">' in body
    assert "Cuenta que termina en 5001" in body
    assert '<dd id="due">5 de diciembre de 2026</dd>' in body
    assert '<dd id="amount">$1,234.56</dd>' in body
    assert ">Llámenme ahora</button>" in body


def test_page_says_when_the_bill_is_past_due(app, client, make_account, clock):
    account_id = make_account(due_date=datetime(2026, 11, 20).date())
    assert "This bill is past due." in shown(client.get(link(app, account_id)))


def test_page_is_never_cached_and_leaks_no_referrer(app, client, make_account, clock):
    response = client.get(link(app, make_account()))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_tampered_link_gets_a_friendly_page_in_both_languages(app, client, make_account, clock):
    path = link(app, make_account())
    tampered = path[:-1] + ("x" if path[-1] != "x" else "y")
    response = client.get(tampered)
    assert response.status_code == 404
    assert "This link doesn't work" in shown(response) and "Este enlace no funciona" in shown(
        response
    )
    assert "$123.45" not in shown(response) and "5001" not in shown(response)
    assert client.get("/r/not-a-token").status_code == 404


def test_expired_link_says_so_in_the_members_language(app, client, make_account, clock):
    path = link(app, make_account(language="es"))
    clock.advance(hours=72)
    assert client.get(path).status_code == 200
    clock.advance(minutes=1)
    response = client.get(path)
    assert response.status_code == 410
    assert "Este enlace ha vencido" in shown(response) and "72 horas" in shown(response)
    assert "$123.45" not in shown(response)


def test_link_stops_working_when_the_phone_on_file_changes(app, client, make_account, clock):
    account_id = make_account()
    path = link(app, account_id)
    with app.app_context():
        db.session.get(Account, account_id).phone = "+12025550199"
        db.session.commit()
    assert client.get(path).status_code == 404


def test_nothing_due_page_offers_no_call(app, client, make_account, clock, fake_twilio):
    path = link(app, make_account(balance_cents=0))
    page = client.get(path)
    assert "Nothing is due right now." in shown(page) and "Call me now" not in shown(page)
    assert client.post(path, data={"csrf_token": "x"}).status_code == 400
    assert fake_twilio.created_calls == []


def test_account_not_payable_by_phone_says_call_the_office(app, client, make_account, clock):
    page = client.get(link(app, make_account(status="no_ivr_payments")))
    assert "can't be taken by phone" in shown(page) and "Call me now" not in shown(page)


# --- CSRF ----------------------------------------------------------------------------------------


def test_post_without_the_pages_csrf_value_places_no_call(
    app, client, make_account, clock, fake_twilio
):
    path = link(app, make_account())
    assert client.post(path).status_code == 400
    client.get(path)  # has the cookie now, but not the form's value
    response = client.post(path, data={"csrf_token": "0" * 32})
    assert response.status_code == 400
    assert "This page was open too long" in shown(response)
    assert fake_twilio.created_calls == [] and callbacks(app) == []


def test_csrf_value_of_another_link_is_refused(app, client, make_account, clock, fake_twilio):
    mine = link(app, make_account(account_number="1001"))
    other = link(app, make_account(account_number="1002", phone="+12025550102"))
    value = csrf_of(client.get(other).text)
    assert client.post(mine, data={"csrf_token": value}).status_code == 400
    assert fake_twilio.created_calls == []


def test_csrf_cookie_is_secure_only_on_an_https_public_url(app, client, make_account, clock):
    path = link(app, make_account())
    assert "Secure" in client.get(path).headers["Set-Cookie"]
    app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:5000"
    cookie = client.get(path).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


# --- Call me now ---------------------------------------------------------------------------------


def test_call_me_now_calls_the_phone_on_file_only(app, client, make_account, clock, fake_twilio):
    path = link(app, make_account())
    response = call_me_now(
        client, path, To="+19005550100", phone="+19005550100", to_number="+19005550100"
    )

    assert response.status_code == 303 and response.headers["Location"].endswith(path)
    (created,) = fake_twilio.created_calls
    assert created["To"] == MEMBER
    assert created["From"] == "+15005550006"
    assert created["Url"].startswith(f"{BASE}/twilio/voice/callback?c=")
    assert created["StatusCallback"].startswith(f"{BASE}/twilio/voice/callback/status?c=")
    assert created["MachineDetection"] == "DetectMessageEnd"
    page = shown(client.get(path))
    assert "We're calling you now at the number ending in 0143." in page
    assert 'http-equiv="refresh"' in page and "Call me now" not in page


def test_one_callback_per_ten_minutes(app, client, make_account, clock, fake_twilio):
    path = link(app, make_account())
    assert call_me_now(client, path).status_code == 303
    clock.advance(minutes=4)

    refused = call_me_now(client, path)

    assert refused.status_code == 429
    assert "You can ask for another call in 6 minutes." in shown(refused)
    assert len(fake_twilio.created_calls) == 1
    clock.advance(minutes=6)
    assert call_me_now(client, path).status_code == 303
    assert len(fake_twilio.created_calls) == 2


def test_five_callbacks_a_day_then_the_page_says_when(
    app, client, make_account, clock, fake_twilio
):
    path = link(app, make_account())
    for _ in range(5):
        assert call_me_now(client, path).status_code == 303
        clock.advance(minutes=11)

    refused = call_me_now(client, path)

    assert refused.status_code == 429
    # The first call was at 10:00 am New York time (the member's): a slot frees at 10:00 tomorrow.
    assert "You can ask for another call after December 4, 2026, 10:00 AM." in shown(refused)
    assert len(fake_twilio.created_calls) == 5
    clock.set(NOON_UTC + timedelta(hours=24, seconds=1))
    assert call_me_now(client, path).status_code == 303


def test_pressing_twice_places_one_call(app, client, make_account, clock, fake_twilio):
    path = link(app, make_account())
    value = csrf_of(client.get(path).text)
    statuses = sorted(client.post(path, data={"csrf_token": value}).status_code for _ in range(2))
    assert statuses == [303, 429]
    assert len(fake_twilio.created_calls) == 1


def test_two_requests_at_the_same_instant_get_one_callback(app, make_account, clock):
    account_id = make_account()
    barrier = threading.Barrier(2)
    outcomes = []

    def request_call():
        with app.app_context():
            account = db.session.get(Account, account_id)
            barrier.wait()
            outcome = callbacks_module.request(account, source="link")
            time.sleep(0.3)  # hold the transaction open: the other request must wait, not race
            db.session.commit()
            outcomes.append(type(outcome).__name__)

    threads = [threading.Thread(target=request_call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["Callback", "Wait"]
    assert len(callbacks(app)) == 1


def test_twilio_refusal_is_shown_and_does_not_use_up_the_limit(
    app, client, make_account, clock, fake_twilio
):
    path = link(app, make_account())
    fake_twilio.fail_calls.append((503, 20500, "Service unavailable"))
    assert call_me_now(client, path).status_code == 303
    assert "We couldn't place the call just now." in shown(client.get(path))
    assert call_me_now(client, path).status_code == 303
    assert [c.status for c in callbacks(app)] == ["error", "calling"]


def test_page_and_callback_log_no_full_numbers(
    app, client, make_account, clock, fake_twilio, caplog
):
    caplog.set_level("DEBUG")
    path = link(app, make_account(account_number="98765001"))
    call_me_now(client, path)
    call_me_now(client, path)
    assert "+12025550143" not in caplog.text and "98765001" not in caplog.text


def test_member_request_is_placed_even_in_quiet_hours(
    app, client, make_account, clock, fake_twilio
):
    path = link(app, make_account(), at=datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 4, 3, 30, tzinfo=UTC))  # 10:30 pm in New York
    assert call_me_now(client, path).status_code == 303
    assert len(fake_twilio.created_calls) == 1
