"""What the rest of the system knows about charging and refunding a card: one Protocol, frozen results, errors.

Expected business outcomes (approved, declined) are values; infrastructure trouble (network,
5xx, auth) is an exception, so a caller can never mistake "Stripe was down" for "declined".
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


class PaymentError(Exception):
    """Base of every payments-package error."""


class PaymentUnavailable(PaymentError):
    """The processor could not be reached or answered with a server error; nothing is known charged."""


class ChargeInProgress(PaymentUnavailable):
    """Stripe is still running an earlier request with this idempotency key (another delivery's).

    Nothing is known charged yet; asked again a moment later, Stripe answers with that request's result.
    """


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


# Refund statuses under which the money has left (or is leaving) the co-op's Stripe balance:
# Stripe debits the balance when the refund is created, and credits it back only if it fails.
REFUND_MONEY_MOVED = frozenset({"pending", "succeeded"})


@dataclass(frozen=True)
class RefundResult:
    """One Stripe Refund as the processor reported it, or ``refused`` when Stripe would not create it."""

    refund_id: str | None
    amount_cents: int
    status: str  # Stripe's: pending, requires_action, succeeded, failed, canceled; or "refused"
    created_at: datetime | None = None  # when Stripe created it (UTC)
    payment_intent_id: str | None = None
    failure_code: str | None = None  # why Stripe refused (charge_already_refunded, amount_too_large, ...)
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def money_moved(self) -> bool:
        """True when this refund took money out of the co-op's Stripe balance."""
        return self.refund_id is not None and self.status in REFUND_MONEY_MOVED

    @classmethod
    def from_stripe(cls, refund: Mapping[str, Any]) -> "RefundResult":
        """Read a Refund object as Stripe sends it (API answer or webhook ``data.object``)."""
        return cls(
            refund_id=refund.get("id"),
            amount_cents=int(refund.get("amount") or 0),
            status=str(refund.get("status") or ""),
            created_at=from_unix(refund.get("created")),
            payment_intent_id=object_id(refund.get("payment_intent")),
            failure_code=refund.get("failure_reason"),
            metadata={str(k): str(v) for k, v in (refund.get("metadata") or {}).items()},
        )


def object_id(field: Any) -> str | None:
    """The id in an expandable Stripe field: the string itself, or the expanded object's ``id``."""
    if isinstance(field, Mapping):
        field = field.get("id")
    return field if isinstance(field, str) else None


def from_unix(seconds: Any) -> datetime | None:
    """A Stripe timestamp (seconds since the epoch) as an aware UTC datetime; None when absent."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook event, reduced to what reconciliation needs."""

    id: str
    type: str
    object: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None  # when Stripe created the event (UTC)


class PaymentGateway(Protocol):
    """Charges a tokenized card and refunds it; implemented by StripeGateway and SandboxGateway."""

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

        The same ``idempotency_key`` again returns the first request's result (or charges, if that
        request never reached the processor): asking again is how to learn what became of an attempt.
        ``off_session``: a saved card charged without the member entering it (its ``customer``
        is required); a bank that wants authentication declines with ``authentication_required``.

        :raises ChargeInProgress: an earlier request with this key is still running at the processor.
        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        ...

    def detach(self, payment_method_id: str) -> None:
        """Detach a saved PaymentMethod from its customer, so it can never be charged again.

        A PaymentMethod Stripe no longer knows (already detached, deleted) counts as detached.

        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        ...

    def refund(
        self,
        *,
        payment_intent_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        """Create one Refund of ``amount_cents`` against the PaymentIntent; ``refused`` when Stripe says no.

        :raises PaymentUnavailable: network failure, 5xx, rate limit, auth or idempotency failure
            (the refund may or may not exist: retry with the same key).
        """
        ...

    def refunds_of(self, payment_intent_id: str) -> Sequence[RefundResult]:
        """Every Refund of the PaymentIntent, as Stripe lists them.

        :raises PaymentUnavailable: network failure, 5xx, rate limit or auth failure.
        """
        ...

    def parse_event(self, payload: bytes, signature: str) -> GatewayEvent:
        """Verify a ``Stripe-Signature`` header and return the event.

        :raises InvalidWebhook: missing, stale or wrong signature, or a payload that is not an event.
        """
        ...
