"""Verify a ``Stripe-Signature`` header and read the event, without the Stripe SDK.

One check for both gateways: the sandbox runs offline and must not load ``stripe``, and the Stripe
gateway must accept exactly what the sandbox accepts. The scheme is Stripe's documented v1
signature (docs.stripe.com/webhooks#verify-manually): HMAC-SHA256 of ``"<t>.<body>"`` under the
endpoint's secret, any one of the header's ``v1`` values matching, ``t`` at most five minutes old.
"""

import hashlib
import hmac
import json
import time

from .gateway import GatewayEvent, InvalidWebhook

WEBHOOK_TOLERANCE_SECONDS = 300


def verify_event(payload: bytes, signature: str, secret: str, *, now: float | None = None) -> GatewayEvent:
    """Verify ``signature`` over ``payload`` with ``secret`` and return the event.

    :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is not an event.
    """
    try:
        body = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidWebhook("invalid Stripe webhook: body is not UTF-8") from error
    if not secret or not secret.strip():
        raise InvalidWebhook("invalid Stripe webhook: no webhook secret configured")
    timestamp, signatures = _parse_header(signature)
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    # Stripe lists several v1 signatures while an endpoint's secret is being rolled: one must match.
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidWebhook("invalid Stripe webhook: signature does not match")
    # An old timestamp means a captured request replayed; Stripe's libraries allow five minutes.
    if timestamp < (time.time() if now is None else now) - WEBHOOK_TOLERANCE_SECONDS:
        raise InvalidWebhook("invalid Stripe webhook: timestamp outside the tolerance")
    return _event_of(body)


def _parse_header(header: str) -> tuple[int, list[str]]:
    """The ``t`` timestamp and every ``v1`` signature of a ``Stripe-Signature`` header."""
    if not header:
        raise InvalidWebhook("invalid Stripe webhook: no Stripe-Signature header")
    pairs = [item.split("=", 1) for item in header.split(",")]
    timestamps = [pair[1] for pair in pairs if len(pair) == 2 and pair[0].strip() == "t"]
    signatures = [pair[1] for pair in pairs if len(pair) == 2 and pair[0].strip() == "v1"]
    try:
        timestamp = int(timestamps[0])
    except (IndexError, ValueError) as error:
        raise InvalidWebhook("invalid Stripe webhook: no timestamp in the signature header") from error
    if not signatures:
        raise InvalidWebhook("invalid Stripe webhook: no v1 signature in the header")
    return timestamp, signatures


def _event_of(body: str) -> GatewayEvent:
    """The event a verified body holds: its id, type and ``data.object``."""
    try:
        values = json.loads(body)
    except ValueError as error:
        raise InvalidWebhook("invalid Stripe webhook: body is not JSON") from error
    if not isinstance(values, dict):
        raise InvalidWebhook("payload is not a Stripe event")
    data = values.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type = values.get("id"), values.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(obj, dict):
        raise InvalidWebhook("payload is not a Stripe event")
    return GatewayEvent(id=event_id, type=event_type, object=obj)
