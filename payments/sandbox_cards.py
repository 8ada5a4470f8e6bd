"""Stripe's documented test cards: what the softphone turns a typed card into, and what the sandbox does.

Source: docs.stripe.com/testing (test PaymentMethods and decline codes).
"""

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxCard:
    """One of Stripe's test cards: its number, the PaymentMethod standing for it, and its outcome."""

    number: str
    payment_method: str  # the pm_… id Twilio's Stripe connector would return
    brand: str  # Twilio's PaymentCardType / Stripe's card.brand, lower case
    decline_code: str | None  # None: the charge succeeds
    # What a saved card does when charged off-session (no member present); None: as on a call.
    off_session_decline_code: str | None = None


CARDS: tuple[SandboxCard, ...] = (
    SandboxCard("4242424242424242", "pm_card_visa", "visa", None),
    SandboxCard("5555555555554444", "pm_card_mastercard", "mastercard", None),
    SandboxCard("378282246310005", "pm_card_amex", "amex", None),
    SandboxCard("6011111111111117", "pm_card_discover", "discover", None),
    SandboxCard("4000000000000002", "pm_card_visa_chargeDeclined", "visa", "generic_decline"),
    SandboxCard(
        "4000000000009995",
        "pm_card_visa_chargeDeclinedInsufficientFunds",
        "visa",
        "insufficient_funds",
    ),
    SandboxCard("4000000000009987", "pm_card_visa_chargeDeclinedLostCard", "visa", "lost_card"),
    SandboxCard("4000000000009979", "pm_card_visa_chargeDeclinedStolenCard", "visa", "stolen_card"),
    SandboxCard("4000000000000069", "pm_card_chargeDeclinedExpiredCard", "visa", "expired_card"),
    SandboxCard("4000000000000127", "pm_card_chargeDeclinedIncorrectCvc", "visa", "incorrect_cvc"),
    SandboxCard(
        "4000000000000119", "pm_card_chargeDeclinedProcessingError", "visa", "processing_error"
    ),
    # Saved-card cards: 0341 attaches to a customer (the keypad payment goes through) and every
    # later charge of it fails; 3155 wants 3-D Secure, which nobody can do on a phone or off-session.
    SandboxCard("4000000000000341", "pm_card_chargeCustomerFail", "visa", None, "card_declined"),
    SandboxCard(
        "4000002500003155", "pm_card_authenticationRequired", "visa", "authentication_required",
        "authentication_required",
    ),
)

BY_NUMBER = {card.number: card for card in CARDS}
BY_PAYMENT_METHOD = {card.payment_method: card for card in CARDS}
# Legacy tok_ ids (tokenType one-time/reusable) behave like their pm_ twins.
BY_PAYMENT_METHOD.update(
    {
        "tok_visa": BY_NUMBER["4242424242424242"],
        "tok_mastercard": BY_NUMBER["5555555555554444"],
        "tok_amex": BY_NUMBER["378282246310005"],
        "tok_discover": BY_NUMBER["6011111111111117"],
        "tok_chargeDeclined": BY_NUMBER["4000000000000002"],
        "tok_chargeDeclinedInsufficientFunds": BY_NUMBER["4000000000009995"],
    }
)


def sandbox_customer(payment_method: str) -> str:
    """The Stripe customer (``cus_…``) Twilio's connector would report as ``ProfileId`` for a test card.

    Stable per PaymentMethod, so a card keyed on two calls belongs to one customer, as a card on
    file does; made from the ``pm_…`` id, never from a card number.
    """
    return "cus_sandbox" + hashlib.sha256(payment_method.encode("utf-8")).hexdigest()[:14]
