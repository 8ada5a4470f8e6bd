"""StripeGateway, the only importer of ``stripe``: a card token becomes one confirmed PaymentIntent.

Business outcomes (approved, declined) come back as a ChargeResult; anything that leaves us not
knowing whether Stripe can serve us (network, 5xx, auth, rate limit) raises PaymentUnavailable.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams

from .gateway import (
    ChargeInProgress,
    ChargeResult,
    GatewayEvent,
    InvalidWebhook,
    PaymentUnavailable,
    RefundResult,
    from_unix,
)

logger = logging.getLogger(__name__)
# The SDK logs request and response bodies at INFO/DEBUG: card tokens, metadata with account numbers.
logging.getLogger("stripe").setLevel(logging.WARNING)

WEBHOOK_TOLERANCE_SECONDS = 300

# InvalidRequestError codes meaning "this card or token can't be used": the caller may try another.
_PAYMENT_METHOD_CODES = frozenset(
    {
        "resource_missing",
        "token_already_used",
        "payment_method_unactivated",
        "payment_method_unexpected_state",
        "payment_method_invalid_parameter",
        "payment_method_not_available",
        "card_decline_rate_limit_exceeded",
    }
)


class StripeGateway:
    """Charge Twilio-tokenized cards through Stripe's PaymentIntents API."""

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str,
        api_base: str | None = None,
        moto: bool = False,
        max_network_retries: int = 2,
    ) -> None:
        # A client instance, never module globals: tests and several co-ops hold different keys.
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
        )
        self._webhook_secret = webhook_secret
        self._moto = moto

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
        """Create and confirm one PaymentIntent for ``token`` (``pm_…`` or ``tok_…``).

        ``off_session`` charges a saved card of ``customer`` without the member present.

        :raises ChargeInProgress: Stripe is still running an earlier request with this key.
        :raises PaymentUnavailable: network failure, 5xx, rate limit, auth or idempotency failure.
        """
        if off_session and not customer:
            raise ValueError("an off-session charge needs the saved card's customer")
        try:
            payment_method = self._payment_method_for(token, idempotency_key)
            intent = self._client.v1.payment_intents.create(
                params=self._intent_params(
                    payment_method, amount_cents, currency, metadata, customer, description, off_session
                ),
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            if _code_of(error) == "idempotency_key_in_use":
                # Another delivery's request with this key is still running at Stripe (a 409,
                # which the SDK has retried already): its result will be this attempt's result.
                logger.info("stripe: attempt still in progress (request %s)", error.request_id)
                raise ChargeInProgress("Stripe is still running this attempt's first request") from error
            if isinstance(error, stripe.CardError):
                return _declined_by_card_error(error)
            if isinstance(error, stripe.InvalidRequestError):
                return _declined_by_invalid_request(error)
            # APIConnectionError, APIError (5xx), RateLimitError, AuthenticationError,
            # PermissionError, IdempotencyError, …: nothing about the card, so the caller
            # hears "try later", not "declined".
            _log_unavailable(error)
            raise PaymentUnavailable(f"Stripe unavailable: {type(error).__name__}") from error
        return _result_of_intent(intent.to_dict())

    def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        """Create one Refund of ``amount_cents`` against the PaymentIntent; ``refused`` when Stripe says no.

        :raises PaymentUnavailable: network failure, 5xx, rate limit, auth or idempotency failure.
        """
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": payment_intent_id, "amount": int(amount_cents), "metadata": dict(metadata)},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as error:
            # Already refunded, more than remains, disputed, …: Stripe created nothing.
            logger.warning("stripe refused the refund: code=%s request=%s", error.code, error.request_id)
            return RefundResult(None, int(amount_cents), "refused", failure_code=error.code or "refused",
                                payment_intent_id=payment_intent_id)
        except stripe.StripeError as error:
            _log_unavailable(error)
            raise PaymentUnavailable(f"Stripe unavailable: {type(error).__name__}") from error
        result = RefundResult.from_stripe(refund.to_dict())
        logger.info("stripe refund %s: %s", result.refund_id, result.status)
        return result

    def refunds_of(self, payment_intent_id: str) -> Sequence[RefundResult]:
        """Every Refund of the PaymentIntent, as Stripe lists them.

        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        try:
            page = self._client.v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
            return [RefundResult.from_stripe(refund.to_dict()) for refund in page.auto_paging_iter()]
        except stripe.StripeError as error:
            _log_unavailable(error)
            raise PaymentUnavailable(f"Stripe unavailable: {type(error).__name__}") from error

    def detach(self, payment_method_id: str) -> None:
        """Detach a saved PaymentMethod from its customer; one Stripe no longer knows counts as detached.

        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        try:
            self._client.v1.payment_methods.detach(payment_method_id)
        except stripe.InvalidRequestError as error:
            # Already detached or gone: what the member asked for is true either way.
            logger.info("stripe detach: nothing to detach (code=%s request=%s)", error.code, error.request_id)
            return
        except stripe.StripeError as error:
            _log_unavailable(error)
            raise PaymentUnavailable(f"Stripe unavailable: {type(error).__name__}") from error
        logger.info("stripe detached a saved payment method")

    def parse_event(self, payload: bytes, signature: str) -> GatewayEvent:
        """Verify a ``Stripe-Signature`` header and return the event.

        :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is no event.
        """
        return _verified(self._client.construct_event, payload, signature, self._webhook_secret)

    def _payment_method_for(self, token: str, idempotency_key: str) -> str:
        if not token.startswith("tok_"):
            return token
        # Legacy Twilio token types give a tok_; PaymentIntents need a PaymentMethod. Its own key
        # keeps a retried attempt from spending the single-use token twice.
        payment_method = self._client.v1.payment_methods.create(
            params={"type": "card", "card": {"token": token}},
            options={"idempotency_key": f"{idempotency_key}:pm"},
        )
        return payment_method.id

    def _intent_params(
        self,
        payment_method: str,
        amount_cents: int,
        currency: str,
        metadata: Mapping[str, str],
        customer: str | None,
        description: str | None,
        off_session: bool = False,
    ) -> PaymentIntentCreateParams:
        params: PaymentIntentCreateParams = {
            "amount": int(amount_cents),
            "currency": currency.lower(),
            "payment_method": payment_method,
            "confirm": True,
            # Card only, so no redirects: the whole payment is confirmed here, on the server. The
            # pinned API version (endive) rejects the older payment_method_types with a 400
            # payment_method_types_no_longer_supported; allowed_payment_method_types replaces it.
            "allowed_payment_method_types": ["card"],
            "metadata": dict(metadata),
            "expand": ["latest_charge", "payment_method"],
        }
        if off_session:
            # A saved card charged by us (a call's "press 1", a scheduled payment, autopay): Stripe
            # then declines with authentication_required rather than waiting for 3-D Secure.
            params["off_session"] = True
        else:
            # A caller on a phone cannot complete 3-D Secure: fail now rather than leave it pending.
            params["error_on_requires_action"] = True
        if customer:
            # A PaymentMethod attached to a Customer (Twilio's reusable tokens) must name it.
            params["customer"] = customer
        if description:
            params["description"] = description
        if self._moto and not off_session:
            # A saved card's charge is merchant-initiated, not a telephone order: no MOTO flag.
            # Stripe rejects this flag on accounts without MOTO enabled, so it is opt-in.
            params["payment_method_options"] = {"card": {"moto": True}}
        return params


def verify_event(payload: bytes, signature: str, secret: str) -> GatewayEvent:
    """Verify a ``Stripe-Signature`` header against ``secret`` and return the event.

    :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is not an event.
    """
    return _verified(stripe.Webhook.construct_event, payload, signature, secret)


def _verified(
    construct: Callable[..., Any], payload: bytes, signature: str, secret: str
) -> GatewayEvent:
    try:
        event = construct(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
        values = event.to_dict()
    except Exception as error:  # signature, JSON, encoding or shape: all mean "not a Stripe event"
        raise InvalidWebhook(f"invalid Stripe webhook: {type(error).__name__}") from error
    data = values.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type = values.get("id"), values.get("type")
    if (
        not isinstance(event_id, str)
        or not isinstance(event_type, str)
        or not isinstance(obj, dict)
    ):
        raise InvalidWebhook("payload is not a Stripe event")
    return GatewayEvent(id=event_id, type=event_type, object=obj, created_at=from_unix(values.get("created")))


def _code_of(error: stripe.StripeError) -> str | None:
    """Stripe's error ``code``, wherever the SDK put it (only some error classes copy it to ``code``)."""
    return error.code or (error.error.code if error.error is not None else None)


def _log_unavailable(error: stripe.StripeError) -> None:
    logger.warning(
        "stripe unavailable: %s (http %s, request %s)", type(error).__name__, error.http_status, error.request_id
    )


def _result_of_intent(intent: Mapping[str, Any]) -> ChargeResult:
    status = intent.get("status")
    brand, last4 = _card_of(intent)
    if status == "succeeded":
        logger.info("stripe charge approved: %s", intent.get("id"))
        return ChargeResult(True, intent.get("id"), None, brand, last4, status)
    if status == "requires_action":
        code = "authentication_required"
    elif status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or "generic_decline"
    else:
        # processing, canceled, …: not money we can promise the caller; webhooks settle it later.
        code = str(status)
    logger.info("stripe charge not approved: %s status=%s code=%s", intent.get("id"), status, code)
    return ChargeResult(False, intent.get("id"), code, brand, last4, status)


def _declined_by_card_error(error: stripe.CardError) -> ChargeResult:
    details = error.error.to_dict() if error.error is not None else {}
    code = details.get("decline_code") or error.code or "card_declined"
    intent = details.get("payment_intent") or {}
    brand, last4 = _card_of(intent)
    logger.info(
        "stripe card declined: %s code=%s request=%s", intent.get("id"), code, error.request_id
    )
    return ChargeResult(False, intent.get("id"), code, brand, last4, intent.get("status"))


def _declined_by_invalid_request(error: stripe.InvalidRequestError) -> ChargeResult:
    param = error.param or ""
    about_card = param in {"payment_method", "card", "card[token]", "token"} or (
        error.code in _PAYMENT_METHOD_CODES and not param.startswith("payment_method_options")
    )
    if not about_card:
        # Our request was wrong (a bug or an account setting such as MOTO): nothing was charged,
        # and telling the caller their card was declined would be false.
        logger.error(
            "stripe rejected the request: code=%s param=%s request=%s",
            error.code,
            param,
            error.request_id,
        )
        raise PaymentUnavailable(f"Stripe rejected the request: {error.code}") from error
    logger.info("stripe payment method refused: code=%s request=%s", error.code, error.request_id)
    return ChargeResult(False, None, error.code or "invalid_payment_method")


def _card_of(intent: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return (brand, last4) from an expanded latest_charge, else an expanded payment_method."""
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        card = (charge.get("payment_method_details") or {}).get("card")
        if isinstance(card, dict) and card.get("last4"):
            return _brand(card), card.get("last4")
    method = intent.get("payment_method")
    if isinstance(method, dict) and isinstance(method.get("card"), dict):
        return _brand(method["card"]), method["card"].get("last4")
    return None, None


def _brand(card: Mapping[str, Any]) -> str | None:
    brand = card.get("brand")
    return brand.lower() if isinstance(brand, str) else None
