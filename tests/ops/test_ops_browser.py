"""/ops in Debian's headless Chromium against ``ivr serve``: each role signs in; screenshots go to /tmp."""

import csv
import io
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from live import LiveServer, ivr, ivr_env
from ops_fixtures import DAY, seed_day

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("IVR_SCREENSHOTS", "/tmp/ivr-ops-shots")


@pytest.fixture
def browser():
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium package is not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(page, origin, name, key):
    page.goto(origin + "/ops")
    page.get_by_label("Agent name").fill(name)
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")


def refund_in_chromium(page, origin, env):
    """An admin refunds $25.00 of AB12CD34 on its page; the refund row is in today's posting file."""
    from playwright.sync_api import expect

    page.goto(f"{origin}/ops/payments/AB12CD34")
    page.get_by_label("Amount to refund, in dollars (empty: all that remains)").fill("25.00")
    page.locator("#refund").click()
    expect(page.get_by_role("status")).to_contain_text("Refunded")
    expect(page.locator("main")).to_contain_text("$75.00 remains")
    page.screenshot(path=f"{SHOTS}/payment-refunded.png", full_page=True)

    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()  # the co-op's day, as export reads it
    exported = ivr("payments", "export", "--date", today, env=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    # (The seeded dispute of AB12CD34 falls on the day after DAY, which may be today: not ours.)
    refunds = [r for r in rows if r["confirmation_number"] == "AB12CD34" and r["type"] == "refund"]
    assert [r["amount"] for r in refunds] == ["-25.00"]
    again = ivr("payments", "export", "--date", today, env=env)  # re-exported: the same stable row
    assert [r["entry_id"] for r in csv.DictReader(io.StringIO(again.stdout))
            if r["confirmation_number"] == "AB12CD34" and r["type"] == "refund"] == [refunds[0]["entry_id"]]


def test_each_role_in_chromium(app, database_url, browser):
    from playwright.sync_api import expect

    seed_day(app)  # the app fixture made the schema on this database
    env = ivr_env(database_url)
    keys = {}
    for name, role in (("Ava", "agent"), ("Sam", "supervisor"), ("Morgan", "admin")):
        added = ivr("agents", "add", name, "--role", role, env=env)
        assert added.returncode == 0, added.stderr
        keys[name] = added.stdout.strip()
    os.makedirs(SHOTS, exist_ok=True)

    with LiveServer(env) as server:
        page = browser.new_page()
        page.set_default_timeout(15000)
        sign_in(page, server.url, "Ava", keys["Ava"])  # an agent: back to /ops, refused
        assert page.goto(server.url + "/ops").status == 403

        for name in ("Sam", "Morgan"):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15000)
            sign_in(page, server.url, name, keys[name])
            page.goto(f"{server.url}/ops?date={DAY}")
            expect(page.locator("#paid-dollars")).to_have_text("$1,197.50")
            expect(page.locator("#containment")).to_have_text("60%")
            page.get_by_role("link", name="Payments", exact=True).click()
            page.get_by_label("From").fill(DAY.isoformat())
            page.get_by_label("To").fill(DAY.isoformat())
            page.get_by_label("Account's last four").fill("5001")
            page.get_by_label("Account's last four").press("Enter")
            page.get_by_role("link", name="AB12CD34").click()
            expect(page.get_by_role("heading", name="Payment AB12CD34")).to_be_visible()
            expect(page.locator("#attempts")).to_contain_text("card_declined")
            can_act = page.locator("#refund").count() == 1 and page.locator("#resend").count() == 1
            assert can_act == (name == "Morgan")
            if name == "Morgan":
                refund_in_chromium(page, server.url, env)
                page.goto(f"{server.url}/ops?date={DAY}")
                page.screenshot(path=f"{SHOTS}/today-desktop.png", full_page=True)
                page.goto(f"{server.url}/ops/payments/AB12CD34")
                page.screenshot(path=f"{SHOTS}/payment-desktop.png", full_page=True)
                page.set_viewport_size({"width": 390, "height": 844})
                page.screenshot(path=f"{SHOTS}/payment-phone.png", full_page=True)
                page.goto(f"{server.url}/ops?date={DAY}")
                page.screenshot(path=f"{SHOTS}/today-phone.png", full_page=True)
