"""SandboxGateway: Stripe's documented test-card outcomes without a network, for demos and dev.

It keeps no state, so several server processes agree: the outcome comes from the token alone and the
PaymentIntent id from the idempotency key alone.
"""

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from .gateway import ChargeResult, GatewayEvent, PaymentUnavailable, RefundResult
from .sandbox_cards import BY_PAYMENT_METHOD

logger = logging.getLogger(__name__)

# Charging this token behaves like Stripe being unreachable, to demo the "try again later" path.
UNAVAILABLE_TOKEN = "pm_sandbox_unavailable"


class SandboxGateway:
    """Answer like Stripe's test mode for the test cards in ``payments.sandbox_cards``."""

    def __init__(self, *, webhook_secret: str) -> None:
        self._webhook_secret = webhook_secret

    def charge(
        self,
        *,
        token: str,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        customer: str | None = None,
        description: str | None = None,
        off_session: bool = False,
    ) -> ChargeResult:
        """Return the outcome Stripe documents for the test card behind ``token`` (saved or keyed).

        :raises PaymentUnavailable: for ``pm_sandbox_unavailable``.
        """
        if token == UNAVAILABLE_TOKEN:
            logger.warning("sandbox: simulating Stripe unavailable")
            raise PaymentUnavailable("sandbox: simulated Stripe outage")
        card = BY_PAYMENT_METHOD.get(token)
        if card is None:
            # Stripe answers an unknown PaymentMethod with a 400 before any PaymentIntent exists.
            logger.info("sandbox: unknown payment method")
            return ChargeResult(False, None, "resource_missing")
        intent_id = payment_intent_id(idempotency_key)
        last4 = card.number[-4:]
        if off_session and not customer:
            raise ValueError("an off-session charge needs the saved card's customer")
        decline_code = (card.off_session_decline_code or card.decline_code) if off_session else card.decline_code
        if decline_code:
            logger.info("sandbox: declined %s code=%s", intent_id, decline_code)
            status = "requires_action" if decline_code == "authentication_required" else "requires_payment_method"
            return ChargeResult(False, intent_id, decline_code, card.brand, last4, status)
        logger.info("sandbox: approved %s", intent_id)
        return ChargeResult(True, intent_id, None, card.brand, last4, "succeeded")

    def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        """Refund as Stripe's test mode does for a card: at once, ``succeeded``.

        The sandbox keeps no state, so it cannot know what remains to refund; the caller checks that.
        """
        refund_id = "re_sandbox_" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:24]
        logger.info("sandbox: refunded %s", refund_id)
        return RefundResult(refund_id, int(amount_cents), "succeeded", datetime.now(UTC), payment_intent_id,
                            metadata=dict(metadata))

    def detach(self, payment_method_id: str) -> None:
        """Nothing to do: the sandbox keeps no customers (a saved card is the member's row alone)."""
        logger.info("sandbox: detached a saved payment method")

    def refunds_of(self, payment_intent_id: str) -> Sequence[RefundResult]:
        """None: the sandbox keeps no state, and each refund it made was recorded from its own answer."""
        return []

    def parse_event(self, payload: bytes, signature: str) -> GatewayEvent:
        """Verify a ``Stripe-Signature`` header exactly as the Stripe gateway does.

        :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is no event.
        """
        # Stripe's SDK checks the signature, as it does for the real gateway. A Stripe event reaches
        # the sandbox only in tests and the demo, so the SDK is loaded then, never just by choosing
        # the sandbox: the offline gateway stays free of it.
        from .stripe_gateway import verify_event

        return verify_event(payload, signature, self._webhook_secret)


def payment_intent_id(idempotency_key: str) -> str:
    """Return the sandbox PaymentIntent id for an attempt: the same key always gives the same id."""
    return "pi_sandbox_" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:24]
