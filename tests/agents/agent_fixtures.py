"""Fixtures the agent tests share: Twilio's REST API on loopback, Stripe still faked by `responses`.

Import the ones a module needs (``from agent_fixtures import app_config, fake_twilio``): pytest
finds fixtures among a test module's names.
"""

import pytest
from ivr.softphone.twilio_api import TwilioStandIn as FakeTwilio
from helpers import ACCOUNT_SID


@pytest.fixture
def fake_twilio():
    with FakeTwilio(ACCOUNT_SID) as fake:
        yield fake


@pytest.fixture
def app_config(app_config, fake_twilio):
    app_config["TWILIO_API_BASE"] = fake_twilio.url
    return app_config


@pytest.fixture(autouse=True)
def _stripe(stripe_api, fake_twilio):
    # Twilio goes to the loopback fake; everything else (Stripe) to `responses`.
    stripe_api.rsps.add_passthru(fake_twilio.url)
    return stripe_api
