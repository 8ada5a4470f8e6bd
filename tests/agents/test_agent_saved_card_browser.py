"""The agent console in headless Chromium: the card on file is shown after a look-up and forgotten with a click."""

import os
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from live import LiveServer, ivr, ivr_env
from sqlalchemy.orm import Session

from ivr.extensions import db

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"


def prepare_database(url):
    """The schema and one member account with a Visa on file."""
    import ivr.all_models  # noqa: F401
    from ivr.models import Account
    from ivr.money.models import SavedCard

    engine = sa.create_engine(url)
    db.metadata.create_all(engine)
    with Session(engine) as session:
        account = Account(account_number="12345001", name="Pat Member", phone="+12025550143", balance_cents=12345,
                          past_due_cents=0, due_date=date(2026, 12, 5))
        session.add(account)
        session.flush()
        session.add(SavedCard(account_id=account.id, stripe_customer="cus_sandbox_pat",
                              stripe_payment_method="pm_card_visa", card_brand="visa", card_last4="4242",
                              saved_at=datetime(2026, 12, 3, 17, 0, tzinfo=UTC), consent_channel="ivr",
                              consent_words="To save this card for next time, press 1."))
        session.commit()
    engine.dispose()


def saved_cards(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT card_last4 FROM saved_cards")).all()
    finally:
        engine.dispose()


@pytest.fixture
def browser():
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium package is not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def test_an_agent_sees_the_card_on_file_and_forgets_it_in_chromium(database_url, browser, tmp_path):
    from playwright.sync_api import expect

    prepare_database(database_url)
    env = ivr_env(database_url)
    added = ivr("agents", "add", "Robin", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()

    with LiveServer(env) as server:
        page = browser.new_page()
        page.set_default_timeout(15000)
        page.goto(server.url + "/agent")
        page.get_by_label("Agent name").fill("Robin")
        page.get_by_label("API key").fill(key)
        page.get_by_label("API key").press("Enter")
        page.get_by_label("Account number").fill("12345-001")
        page.get_by_label("Account number").press("Enter")

        card = page.locator("#acct-card")
        expect(card).to_contain_text("Visa ending 4242, saved ")
        expect(card).to_contain_text("on the phone line")
        page.get_by_label("Account number").fill("99999999")  # edited since: the shown account is the one forgotten
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Forget this card").click()

        expect(card).to_have_text("none (forgotten just now)")
        expect(page.get_by_role("button", name="Forget this card")).to_be_hidden()
        page.screenshot(path=str(tmp_path / "agent-card-forgotten.png"), full_page=True)

    assert saved_cards(database_url) == []
    audit = ivr("agents", "audit", "--limit", "5", env=env)
    assert "saved_card.forget" in audit.stdout and "forgotten" in audit.stdout
