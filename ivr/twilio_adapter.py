"""The one module that imports the Twilio SDK: webhook signatures, TwiML builders and the REST API."""

from collections.abc import Mapping
from typing import Any

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from twilio.twiml.messaging_response import MessagingResponse


def compute_signature(url: str, params: Mapping[str, Any], auth_token: str) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def validate_signature(url: str, params: Mapping[str, Any], signature: str, auth_token: str) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params`` under ``auth_token``."""
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)


def voice_response() -> VoiceResponse:
    """A new TwiML ``<Response>`` builder for voice."""
    return VoiceResponse()


def messaging_response() -> MessagingResponse:
    """A new TwiML ``<Response>`` builder for SMS replies."""
    return MessagingResponse()
