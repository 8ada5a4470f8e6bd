"""The console's account facts in Chromium: hidden until a look-up succeeds, cleared by a failed
one, and written as people read them ($1,048.75, December 23, 2026)."""

from datetime import date

import pytest
import sqlalchemy as sa
from live import LiveServer, ivr, ivr_env
from sqlalchemy.orm import Session
from test_agent_browser import browser  # noqa: F401

from ivr.extensions import db

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def two_accounts(url):
    import ivr.all_models  # noqa: F401
    from ivr.models import Account

    engine = sa.create_engine(url)
    db.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Account(account_number="67890001", name="Grace Lindqvist", phone="+12025550127",
                            balance_cents=104875, past_due_cents=125000, due_date=date(2026, 12, 23)))
        session.commit()
    engine.dispose()


def test_facts_hidden_before_a_look_up_and_cleared_after_a_failed_one(database_url, browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    two_accounts(database_url)
    env = ivr_env(database_url)
    added = ivr("agents", "add", "Robin", env=env)
    assert added.returncode == 0, added.stderr
    with LiveServer(env) as server:
        page = browser.new_page()
        page.set_default_timeout(15000)
        page.goto(server.url + "/agent")
        page.get_by_label("Agent name").fill("Robin")
        page.get_by_label("API key").fill(added.stdout.strip())
        page.get_by_label("API key").press("Enter")
        expect(page.get_by_role("heading", name="Take a payment")).to_be_visible()

        facts = page.locator("#account-facts")
        expect(facts).to_be_hidden()  # no empty Name / Balance / Due date grid before a look-up
        assert facts.bounding_box() is None
        page.screenshot(path=str(tmp_path / "console-before.png"), full_page=True)

        page.get_by_label("Account number").fill("67890001")
        page.get_by_role("button", name="Look up").click()
        expect(page.locator("#acct-balance")).to_have_text("$1,048.75")
        expect(page.locator("#acct-past-due")).to_have_text("$1,250.00")
        expect(page.locator("#acct-due")).to_have_text("December 23, 2026")
        expect(page.locator("#amount-help")).to_have_text("At most $1,048.75.")
        expect(facts).to_be_visible()
        page.screenshot(path=str(tmp_path / "console-found.png"), full_page=True)

        page.get_by_label("Account number").fill("99999999")
        page.get_by_role("button", name="Look up").click()
        expect(page.locator("#error")).to_be_visible()
        expect(facts).to_be_hidden()
        assert page.locator("#acct-name").text_content() == ""
        assert page.locator("#acct-balance").text_content() == ""
        # nor the amount and limit the look-up filled in from her balance
        expect(page.get_by_label("Amount in dollars")).to_have_value("")
        expect(page.locator("#amount-help")).to_have_text("Look up the account first; at most the balance.")
        assert "Grace" not in page.content().split('id="account-facts"')[1].split("</dl>")[0]
        page.screenshot(path=str(tmp_path / "console-failed.png"), full_page=True)
