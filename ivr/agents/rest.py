"""The app's Twilio REST client, built once from the config, shared through ``app.extensions``."""

from flask import current_app

from ..twilio_adapter import TwilioRest


def twilio_rest() -> TwilioRest:
    """The ``TwilioRest`` for this app (TWILIO_ACCOUNT_SID/AUTH_TOKEN/FROM_NUMBER/API_BASE)."""
    rest = current_app.extensions.get("ivr.twilio")
    if rest is None:
        cfg = current_app.config
        rest = TwilioRest(
            cfg["TWILIO_ACCOUNT_SID"],
            cfg["TWILIO_AUTH_TOKEN"],
            from_number=cfg["TWILIO_FROM_NUMBER"],
            api_base=cfg.get("TWILIO_API_BASE"),
        )
        current_app.extensions["ivr.twilio"] = rest
    return rest
