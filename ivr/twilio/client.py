"""The one place a ``TwilioRest`` client is built from the settings, and the app's cached one."""

from collections.abc import Mapping
from typing import Any

from flask import current_app

from .adapter import TwilioRest

EXTENSION = "ivr.twilio"


def rest_from_config(config: Mapping[str, Any]) -> TwilioRest:
    """A ``TwilioRest`` for the account, sender number and API origin ``config`` names."""
    return TwilioRest(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        from_number=config["TWILIO_FROM_NUMBER"],
        api_base=config.get("TWILIO_API_BASE"),
    )


def twilio_rest() -> TwilioRest:
    """The app's ``TwilioRest``, built once and cached in ``current_app.extensions["ivr.twilio"]``."""
    extensions = current_app.extensions
    rest = extensions.get(EXTENSION)
    if rest is None:
        rest = extensions.setdefault(EXTENSION, rest_from_config(current_app.config))
    return rest
