"""Webhook authentication: every Twilio request must carry a valid ``X-Twilio-Signature``."""

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, request

from ..edge import request_size
from . import adapter as twilio_adapter

logger = logging.getLogger(__name__)


def public_url() -> str:
    """The URL Twilio called: ``PUBLIC_BASE_URL`` + path + query, never the Host header we were reached by."""
    base = current_app.config["PUBLIC_BASE_URL"]
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def signed_by_twilio(url: str, signature: str) -> bool:
    """True when the request is signed with the auth token, or with the previous one during a rotation."""
    config = current_app.config
    tokens = [config["TWILIO_AUTH_TOKEN"]]
    if config.get("TWILIO_AUTH_TOKEN_PREVIOUS"):
        tokens.append(config["TWILIO_AUTH_TOKEN_PREVIOUS"])
    return any(twilio_adapter.validate_signature(url, request.form, signature, token) for token in tokens)


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject (403, nothing changed) any request whose Twilio signature does not match."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        # Before the form is read: a body larger than any Twilio sends is refused unread (413).
        request_size.limit_to_twilio()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signed_by_twilio(public_url(), signature):
            logger.warning("rejected unsigned or forged Twilio request to %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapped


# Twilio's Call SIDs: "CA" and 32 hex digits. Anything else (none at all, say) would name a call
# row no real call has, which every such request would then share.
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


def call_sid() -> str:
    """The signed request's ``CallSid``; a request without a well-formed one is refused (400, nothing changed)."""
    sid = request.form.get("CallSid", "")
    if not _CALL_SID.fullmatch(sid):
        logger.warning("refused a signed request to %s without a proper CallSid", request.path)
        abort(400)
    return sid
