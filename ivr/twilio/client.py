"""The app's one ``TwilioRest`` client, built from the config and cached on the app."""

from flask import current_app

from .adapter import TwilioRest

EXTENSION = "ivr.twilio"


def twilio_rest() -> TwilioRest:
    """The app's ``TwilioRest``, cached in ``current_app.extensions["ivr.twilio"]``."""
    extensions = current_app.extensions
    rest = extensions.get(EXTENSION)
    if rest is None:
        cfg = current_app.config
        rest = extensions.setdefault(
            EXTENSION,
            TwilioRest(
                cfg["TWILIO_ACCOUNT_SID"],
                cfg["TWILIO_AUTH_TOKEN"],
                from_number=cfg["TWILIO_FROM_NUMBER"],
                api_base=cfg.get("TWILIO_API_BASE"),
            ),
        )
    return rest
