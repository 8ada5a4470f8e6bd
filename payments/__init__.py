"""The payment boundary: a gateway Protocol, Stripe's implementation and an offline sandbox."""

from .gateway import (
    ChargeInProgress,
    ChargeResult,
    GatewayEvent,
    InvalidWebhook,
    PaymentError,
    PaymentGateway,
    PaymentUnavailable,
    RefundResult,
)

__all__ = [
    "ChargeInProgress",
    "ChargeResult",
    "GatewayEvent",
    "InvalidWebhook",
    "PaymentError",
    "PaymentGateway",
    "PaymentUnavailable",
    "RefundResult",
    "build_gateway",
]


def build_gateway(
    kind: str,
    *,
    secret_key: str | None,
    webhook_secret: str,
    api_base: str | None = None,
    moto: bool = False,
) -> PaymentGateway:
    """Return the configured gateway: ``stripe`` (real API) or ``sandbox`` (Stripe test cards, offline)."""
    if kind == "stripe":
        from .stripe_gateway import StripeGateway

        if not secret_key:
            raise PaymentError("the stripe gateway needs a secret key")
        return StripeGateway(secret_key, webhook_secret=webhook_secret, api_base=api_base, moto=moto)
    if kind == "sandbox":
        from .sandbox import SandboxGateway

        return SandboxGateway(webhook_secret=webhook_secret)
    raise PaymentError(f"unknown payment gateway {kind!r}")
