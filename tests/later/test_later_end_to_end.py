"""End to end: ``ivr call`` schedules a payment with a card keyed in the call; ``ivr worker --once`` charges it."""

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from live import LiveServer, live_env  # noqa: F401  (a fixture)
from live import ivr as run_ivr

pytestmark = pytest.mark.e2e

DANA = "+12025550143"  # two demo accounts on this phone; the first owes $84.17


def test_a_payment_scheduled_by_phone_for_today_is_charged_by_the_worker_once(live_env):
    env = {**live_env, "SCHEDULED_CHARGE_HOUR": "0"}  # today's payments are due from midnight
    today = datetime.now(ZoneInfo("America/New_York")).date()
    keys = f"_ 1 20011 5 1 1 {today:%m%d} 1"
    with LiveServer(env) as server:
        result = run_ivr("call", "--url", server.url, "--json", "--from", DANA, "--keys", keys,
                         "--card", "4242424242424242,12/30,123,30301", env=server.env)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    said = " ".join(say["text"] for step in transcript["steps"] for say in step["says"])
    assert "Pay later or autopay, 5." in said
    assert "Next we'll ask for the card to charge that day." in said
    assert "Your payment of eighty-four dollars and seventeen cents is scheduled for" in said
    assert "It is less than 24 hours away, so it can no longer be cancelled." in said

    charged = run_ivr("worker", "--once", env=env)
    assert charged.returncode == 0, charged.stderr
    assert charged.stdout.splitlines()[0] == "Charged 1 payment made later"
    again = run_ivr("worker", "--once", env=env)
    assert "Charged" not in again.stdout
    receipts = re.findall(r"payment of \$84\.17 received", charged.stdout + again.stdout)
    assert len(receipts) == 1

    export = run_ivr("payments", "export", env=env)
    assert re.search(r"^\d{8},12345001,84\.17,USD,[^,]+,scheduled,visa,4242,", export.stdout, re.M), export.stdout
