import json
import subprocess
import sys
from pathlib import Path

import pytest
import stripe

from payments import InvalidWebhook, PaymentUnavailable, build_gateway
from payments.sandbox import SandboxGateway

WEBHOOK_SECRET = "whsec_sandbox_test"
ROOT = Path(__file__).resolve().parents[2]


def charge(gw, token, key="payment-1:attempt-1"):
    return gw.charge(
        token=token,
        amount_cents=4200,
        currency="usd",
        idempotency_key=key,
        metadata={"account_number": "12345001"},
    )


@pytest.fixture
def sandbox():
    return SandboxGateway(webhook_secret=WEBHOOK_SECRET)


# Outcomes as docs.stripe.com/testing documents them for each test PaymentMethod / token.
@pytest.mark.parametrize(
    ("token", "approved", "decline_code", "brand", "last4"),
    [
        ("pm_card_visa", True, None, "visa", "4242"),
        ("pm_card_mastercard", True, None, "mastercard", "4444"),
        ("pm_card_amex", True, None, "amex", "0005"),
        ("pm_card_discover", True, None, "discover", "1117"),
        ("tok_visa", True, None, "visa", "4242"),
        ("pm_card_visa_chargeDeclined", False, "generic_decline", "visa", "0002"),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            False,
            "insufficient_funds",
            "visa",
            "9995",
        ),
        ("tok_chargeDeclinedInsufficientFunds", False, "insufficient_funds", "visa", "9995"),
        ("pm_card_visa_chargeDeclinedLostCard", False, "lost_card", "visa", "9987"),
        ("pm_card_visa_chargeDeclinedStolenCard", False, "stolen_card", "visa", "9979"),
        ("pm_card_chargeDeclinedExpiredCard", False, "expired_card", "visa", "0069"),
        ("pm_card_chargeDeclinedIncorrectCvc", False, "incorrect_cvc", "visa", "0127"),
        ("pm_card_chargeDeclinedProcessingError", False, "processing_error", "visa", "0119"),
    ],
)
def test_sandbox_charge_follows_stripe_test_cards(
    sandbox, token, approved, decline_code, brand, last4
):
    result = charge(sandbox, token)

    assert result.approved is approved
    assert result.decline_code == decline_code
    assert (result.card_brand, result.card_last4) == (brand, last4)
    assert result.payment_intent_id.startswith("pi_")
    assert result.status == ("succeeded" if approved else "requires_payment_method")


@pytest.mark.parametrize("token", ["pm_card_nonexistent", "tok_nonexistent", ""])
def test_sandbox_charge_unknown_token_is_resource_missing(sandbox, token):
    result = charge(sandbox, token)

    assert (result.approved, result.decline_code, result.payment_intent_id) == (
        False,
        "resource_missing",
        None,
    )


def test_sandbox_same_idempotency_key_gives_same_intent_in_any_process(sandbox):
    # A second instance stands in for another server process: nothing is shared but the key.
    other = SandboxGateway(webhook_secret=WEBHOOK_SECRET)

    first = charge(sandbox, "pm_card_visa", key="payment-9:attempt-1")
    retried = charge(other, "pm_card_visa", key="payment-9:attempt-1")
    next_attempt = charge(sandbox, "pm_card_visa", key="payment-9:attempt-2")

    assert first.payment_intent_id == retried.payment_intent_id
    assert next_attempt.payment_intent_id != first.payment_intent_id


def test_sandbox_unavailable_token_raises(sandbox):
    with pytest.raises(PaymentUnavailable):
        charge(sandbox, "pm_sandbox_unavailable")


def test_build_gateway_sandbox_needs_no_secret_key():
    gw = build_gateway("sandbox", secret_key=None, webhook_secret=WEBHOOK_SECRET)

    assert charge(gw, "pm_card_visa").approved


EVENT = json.dumps(
    {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "data": {
            "object": {"id": "pi_sandbox_abc", "object": "payment_intent", "status": "succeeded"}
        },
        "type": "payment_intent.succeeded",
    }
)


def test_sandbox_parse_event_verifies_stripe_signature(sandbox):
    header = stripe.WebhookSignature.generate_signature_header(EVENT, WEBHOOK_SECRET)

    event = sandbox.parse_event(EVENT.encode(), header)

    assert (event.id, event.type, event.object["id"]) == (
        "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "payment_intent.succeeded",
        "pi_sandbox_abc",
    )


def test_sandbox_parse_event_rejects_wrong_secret(sandbox):
    header = stripe.WebhookSignature.generate_signature_header(EVENT, "whsec_not_ours")

    with pytest.raises(InvalidWebhook):
        sandbox.parse_event(EVENT.encode(), header)


def test_sandbox_accepts_any_listed_signature_while_the_secret_is_rolled(sandbox):
    # During a secret roll Stripe signs with the old and the new secret in one header.
    old = stripe.WebhookSignature.generate_signature_header(EVENT, "whsec_old_secret")
    new = stripe.WebhookSignature.generate_signature_header(EVENT, WEBHOOK_SECRET)
    header = old + "," + new.split(",", 1)[1]

    assert sandbox.parse_event(EVENT.encode(), header).id == "evt_1NG8Du2eZvKYlo2CUI79vXWy"


def test_sandbox_does_not_load_the_stripe_sdk():
    # A fresh interpreter: this test process has imported stripe already.
    script = (
        "import sys\n"
        "from payments import build_gateway\n"
        "import payments.sandbox\n"
        "build_gateway('sandbox', secret_key=None, webhook_secret='whsec_x')\n"
        "print(sorted(m for m in sys.modules if m == 'stripe' or m.startswith('stripe.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert out.stdout.strip() == "[]"
