"""The reminder link page in a real headless Chromium, JavaScript off, against real `ivr serve`."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from ivr.softphone.twilio_api import TwilioStandIn as FakeTwilio
from helpers import ACCOUNT_SID, TOKEN
from live import LiveServer, ivr_env
from sqlalchemy.orm import Session

import ivr.all_models  # noqa: F401
from ivr.extensions import db
from ivr.models import Account
from ivr.reminders import tokens
from ivr.twilio.adapter import compute_signature

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SECRET = "browser-test-secret"
PHONE = "+12025550143"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def member(database_url):
    """A fresh schema with one member whose bill is due in two days: (engine, account id)."""
    engine = sa.create_engine(database_url)
    db.metadata.create_all(engine)
    today = datetime.now(ZoneInfo("America/New_York")).date()
    with Session(engine) as session:
        account = Account(
            account_number="12345001",
            name="Pat Member",
            phone=PHONE,
            balance_cents=8417,
            past_due_cents=0,
            due_date=today + timedelta(days=2),
            language="en",
            status="active",
        )
        session.add(account)
        session.commit()
        account_id = account.id
    yield engine, account_id
    db.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def server(database_url, member):
    with FakeTwilio(ACCOUNT_SID) as fake:
        env = ivr_env(
            database_url,
            TWILIO_API_BASE=fake.url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER="+12025550100",
            SECRET_KEY=SECRET,
        )
        with LiveServer(env) as live:
            live.fake_twilio = fake
            yield live


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def phone_context(browser):
    """A phone-sized browser with JavaScript switched off: the page must work without it."""
    return browser.new_context(
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
        locale="en-US",
    )


def twilio_posts(url: str, params: dict) -> int:
    """Twilio calling the live server's webhook, signed against its public URL."""
    signature = compute_signature(url, params, TOKEN)
    return requests.post(
        url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10
    ).status_code


def test_member_taps_call_me_now_and_sees_the_call_through(server, member, browser):
    _, account_id = member
    token = tokens.issue(SECRET, account_id, PHONE, datetime.now().astimezone())
    context = phone_context(browser)
    page = context.new_page()

    page.goto(f"{server.url}/r/{token}")

    assert page.locator("#account").inner_text() == "Account ending in 5001"
    assert page.locator("#amount").inner_text() == "$84.17"
    button = page.get_by_role("button", name="Call me now")
    box = button.bounding_box()
    assert (
        box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["height"] >= 44
    )  # fits, easy to tap
    assert "12345001" not in page.content() and PHONE not in page.content()

    button.click()

    page.get_by_text("We're calling you now at the number ending in 0143.").wait_for()
    assert page.url == f"{server.url}/r/{token}"  # post/redirect/get: a reload asks for nothing
    (created,) = server.fake_twilio.created_calls
    assert created["To"] == PHONE and created["From"] == "+12025550100"
    assert created["Url"].startswith(f"{server.url}/twilio/voice/callback?c=")

    # Nobody answers. The page refreshes itself (no JavaScript) and says so.
    (call_sid,) = server.fake_twilio.calls
    call = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+12025550100",
        "To": PHONE,
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    assert twilio_posts(created["StatusCallback"], {**call, "CallStatus": "no-answer"}) == 204
    page.get_by_text("We couldn't reach you.").wait_for(timeout=15000)
    assert page.get_by_text("You can ask for another call in 10 minutes.").is_visible()
    assert page.get_by_role("button", name="Call me now").count() == 0
    context.close()


def test_tampered_link_shows_a_friendly_page(server, member, browser):
    _, account_id = member
    token = tokens.issue(SECRET, account_id, PHONE, datetime.now().astimezone())
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    context = phone_context(browser)
    page = context.new_page()

    response = page.goto(f"{server.url}/r/{tampered}")

    assert response.status == 404
    assert page.get_by_role("heading", name="This link doesn't work").is_visible()
    assert page.get_by_role("heading", name="Este enlace no funciona").is_visible()
    assert "$84.17" not in page.content()
    context.close()
