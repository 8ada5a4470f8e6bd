"""Rotating the Twilio auth token: while TWILIO_AUTH_TOKEN_PREVIOUS is set, webhooks signed with it still work."""

import pytest
from helpers import CallActions

from ivr.config import load_config

NEW, OLD = "the-new-auth-token", "the-old-auth-token"


@pytest.fixture
def app_config(app_config):
    app_config.update(TWILIO_AUTH_TOKEN=NEW, TWILIO_AUTH_TOKEN_PREVIOUS=OLD)
    return app_config


@pytest.mark.parametrize("token", [NEW, OLD], ids=["new token", "previous token"])
def test_during_a_rotation_a_call_signed_with_either_token_is_answered(app, client, make_account, token):
    make_account()
    call = CallActions(client, token=token)
    call.start()
    assert call.last_status == 200
    assert call.said()  # the greeting, not a refusal


def test_during_a_rotation_any_other_token_is_still_refused(app, client, make_account):
    make_account()
    forged = CallActions(client, token="someone-elses-token")
    forged.start()
    assert forged.last_status == 403


def test_once_the_previous_token_is_removed_it_is_refused(app, client, make_account):
    app.config["TWILIO_AUTH_TOKEN_PREVIOUS"] = None
    make_account()
    old = CallActions(client, token=OLD)
    old.start()
    assert old.last_status == 403


def test_the_setting_is_read_from_the_environment_and_empty_means_none():
    assert load_config({"TWILIO_AUTH_TOKEN_PREVIOUS": "  x-old  "})["TWILIO_AUTH_TOKEN_PREVIOUS"] == "x-old"
    assert load_config({"TWILIO_AUTH_TOKEN_PREVIOUS": " "})["TWILIO_AUTH_TOKEN_PREVIOUS"] is None
