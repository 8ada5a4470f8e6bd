"""What the rest of the system knows about charging a card: one Protocol, frozen results, errors.

Expected business outcomes (approved, declined) are values; infrastructure trouble (network,
5xx, auth) is an exception, so a caller can never mistake "Stripe was down" for "declined".
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class PaymentError(Exception):
    """Base of every payments-package error."""


class PaymentUnavailable(PaymentError):
    """The processor could not be reached or answered with a server error; nothing is known charged."""


class InvalidWebhook(PaymentError):
    """A webhook whose signature is missing, stale or wrong, or whose payload is not an event."""


@dataclass(frozen=True)
class ChargeResult:
    """Outcome of one confirmed PaymentIntent."""

    approved: bool
    payment_intent_id: str | None
    decline_code: str | None = None  # generic_decline, insufficient_funds, expired_card, incorrect_cvc, ...
    card_brand: str | None = None  # lower case: visa, mastercard, amex, discover
    card_last4: str | None = None
    status: str | None = None  # the PaymentIntent status as Stripe reported it


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook event, reduced to what reconciliation needs."""

    id: str
    type: str
    object: Mapping[str, Any] = field(default_factory=dict)


class PaymentGateway(Protocol):
    """Charges a tokenized card; implemented by StripeGateway and SandboxGateway."""

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
    ) -> ChargeResult:
        """Create and confirm one PaymentIntent for ``token`` (``pm_…`` or ``tok_…``).

        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        ...

    def parse_event(self, payload: bytes, signature: str) -> GatewayEvent:
        """Verify a ``Stripe-Signature`` header and return the event.

        :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is not an event.
        """
        ...
