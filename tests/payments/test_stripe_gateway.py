import json
import logging
import time
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe

from payments import InvalidWebhook, PaymentUnavailable, build_gateway
from payments.stripe_gateway import StripeGateway, verify_event

SECRET_KEY = "sk_test_gateway_key_not_real"
WEBHOOK_SECRET = "whsec_gateway_test"
API = "https://api.stripe.com"
INTENTS = f"{API}/v1/payment_intents"
METHODS = f"{API}/v1/payment_methods"
KEY = "payment-7f3c2a:attempt-1"
METADATA = {"account_number": "12345001", "call_sid": "CA0123456789abcdef0123456789abcdef"}


def gateway(**kwargs):
    kwargs.setdefault("max_network_retries", 0)
    return StripeGateway(SECRET_KEY, webhook_secret=WEBHOOK_SECRET, **kwargs)


def charge(gw, token="pm_card_visa", **kwargs):
    args = {
        "token": token,
        "amount_cents": 12345,
        "currency": "usd",
        "idempotency_key": KEY,
        "metadata": METADATA,
    }
    args.update(kwargs)
    return gw.charge(**args)


def form(call):
    body = call.request.body
    return {k: v[0] for k, v in parse_qs(body if isinstance(body, str) else body.decode()).items()}


def intent(status="succeeded", payment_method="pm_card_visa", brand="visa", last4="4242", **extra):
    """A PaymentIntent shaped like docs.stripe.com/api/payment_intents/object, charge expanded."""
    body = {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 12345,
        "amount_capturable": 0,
        "amount_received": 12345 if status == "succeeded" else 0,
        "capture_method": "automatic_async",
        "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "confirmation_method": "automatic",
        "created": 1680800504,
        "currency": "usd",
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": {
            "id": "ch_3MtwBwLkdIwHu7ix28a3tqPb",
            "object": "charge",
            "amount": 12345,
            "paid": status == "succeeded",
            "status": "succeeded" if status == "succeeded" else "failed",
            "payment_method": payment_method,
            "payment_method_details": {
                "type": "card",
                "card": {"brand": brand, "last4": last4, "exp_month": 8, "exp_year": 2030},
            },
        },
        "livemode": False,
        "metadata": METADATA,
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "status": status,
    }
    body.update(extra)
    return body


def stripe_error(rsps, url, status, error, headers=None):
    rsps.add(responses.POST, url, status=status, json={"error": error}, headers=headers or {})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_charge_approved_sends_one_confirmed_intent(rsps):
    rsps.add(responses.POST, INTENTS, json=intent())

    result = charge(gateway())

    assert result.approved
    assert result.payment_intent_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert (result.card_brand, result.card_last4, result.status) == ("visa", "4242", "succeeded")
    assert result.decline_code is None
    assert len(rsps.calls) == 1
    sent = form(rsps.calls[0])
    assert sent["amount"] == "12345"
    assert sent["currency"] == "usd"
    assert sent["payment_method"] == "pm_card_visa"
    assert sent["confirm"] == "true"
    # Card only (no redirects), in the form the pinned API version accepts.
    assert sent["allowed_payment_method_types[0]"] == "card"
    assert not any(k.startswith("payment_method_types") for k in sent)
    assert sent["metadata[account_number]"] == "12345001"
    assert sent["metadata[call_sid]"] == METADATA["call_sid"]
    assert "latest_charge" in {v for k, v in sent.items() if k.startswith("expand[")}
    assert not any(k.startswith("payment_method_options") for k in sent)
    assert "customer" not in sent
    headers = rsps.calls[0].request.headers
    assert headers["Idempotency-Key"] == KEY
    assert headers["Stripe-Version"]
    assert headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_charge_sends_customer_and_description_when_given(rsps):
    rsps.add(responses.POST, INTENTS, json=intent(customer="cus_NffrFeUfNV2Hib"))

    charge(gateway(), customer="cus_NffrFeUfNV2Hib", description="Riverbend Electric 12345001")

    sent = form(rsps.calls[0])
    assert sent["customer"] == "cus_NffrFeUfNV2Hib"
    assert sent["description"] == "Riverbend Electric 12345001"


def test_charge_marks_moto_only_when_enabled(rsps):
    rsps.add(responses.POST, INTENTS, json=intent())

    charge(gateway(moto=True))

    assert form(rsps.calls[0])["payment_method_options[card][moto]"] == "true"


def test_charge_reports_brand_lower_case_from_payment_method_when_no_charge(rsps):
    body = intent(latest_charge=None)
    body["payment_method"] = {
        "id": "pm_card_mastercard",
        "object": "payment_method",
        "type": "card",
        "card": {"brand": "MasterCard", "last4": "4444"},
    }
    rsps.add(responses.POST, INTENTS, json=body)

    result = charge(gateway(), token="pm_card_mastercard")

    assert (result.card_brand, result.card_last4) == ("mastercard", "4444")


def test_charge_turns_tok_into_payment_method_then_charges_it(rsps):
    rsps.add(
        responses.POST,
        METHODS,
        json={
            "id": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6",
            "object": "payment_method",
            "type": "card",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2030},
        },
    )
    rsps.add(responses.POST, INTENTS, json=intent(payment_method="pm_1Q0PsIJvEtkwdCNYMSaVuRz6"))

    result = charge(gateway(), token="tok_visa")

    assert result.approved
    pm_call, pi_call = rsps.calls
    assert form(pm_call) == {"type": "card", "card[token]": "tok_visa"}
    assert pm_call.request.headers["Idempotency-Key"] == f"{KEY}:pm"
    assert form(pi_call)["payment_method"] == "pm_1Q0PsIJvEtkwdCNYMSaVuRz6"
    assert pi_call.request.headers["Idempotency-Key"] == KEY


def test_charge_unknown_tok_is_declined_without_an_intent(rsps):
    stripe_error(
        rsps,
        METHODS,
        400,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "card[token]",
            "message": "No such token: 'tok_nope'",
        },
    )

    result = charge(gateway(), token="tok_nope")

    assert not result.approved
    assert result.decline_code == "resource_missing"
    assert result.payment_intent_id is None
    assert len(rsps.calls) == 1


def test_charge_card_declined_returns_decline_code_and_intent(rsps):
    declined = intent(status="requires_payment_method")
    stripe_error(
        rsps,
        INTENTS,
        402,
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "charge": "ch_3MtwBwLkdIwHu7ix28a3tqPb",
            "doc_url": "https://docs.stripe.com/error-codes/card-declined",
            "message": "Your card has insufficient funds.",
            "payment_intent": declined,
        },
    )

    result = charge(gateway(), token="pm_card_visa_chargeDeclinedInsufficientFunds")

    assert not result.approved
    assert result.decline_code == "insufficient_funds"
    assert result.payment_intent_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert result.status == "requires_payment_method"


def test_charge_card_error_without_decline_code_uses_error_code(rsps):
    stripe_error(
        rsps,
        INTENTS,
        402,
        {
            "type": "card_error",
            "code": "incorrect_cvc",
            "param": "cvc",
            "message": "Your card's security code is incorrect.",
        },
    )

    result = charge(gateway(), token="pm_card_chargeDeclinedIncorrectCvc")

    assert (result.approved, result.decline_code) == (False, "incorrect_cvc")


def test_charge_unknown_payment_method_is_declined(rsps):
    stripe_error(
        rsps,
        INTENTS,
        400,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "payment_method",
            "message": "No such PaymentMethod: 'pm_nope'",
        },
    )

    result = charge(gateway(), token="pm_nope")

    assert (result.approved, result.decline_code) == (False, "resource_missing")


@pytest.mark.parametrize(
    ("status", "last_error", "code"),
    [
        ("requires_action", None, "authentication_required"),
        (
            "requires_payment_method",
            {"type": "card_error", "code": "card_declined", "decline_code": "lost_card"},
            "lost_card",
        ),
    ],
)
def test_charge_unfinished_intent_is_declined(rsps, status, last_error, code):
    rsps.add(responses.POST, INTENTS, json=intent(status=status, last_payment_error=last_error))

    result = charge(gateway())

    assert (result.approved, result.decline_code, result.status) == (False, code, status)


def test_charge_request_rejected_for_our_own_parameters_is_unavailable_not_declined(rsps):
    # e.g. MOTO requested on an account Stripe has not enabled it for: the card is not at fault.
    stripe_error(
        rsps,
        INTENTS,
        400,
        {
            "type": "invalid_request_error",
            "code": "parameter_unknown",
            "param": "payment_method_options[card][moto]",
            "message": "Received unknown parameter: payment_method_options[card][moto]",
        },
    )

    with pytest.raises(PaymentUnavailable):
        charge(gateway(moto=True))


def test_charge_server_error_raises_unavailable_after_one_request(rsps):
    stripe_error(rsps, INTENTS, 500, {"type": "api_error", "message": "An unknown error occurred"})

    with pytest.raises(PaymentUnavailable) as raised:
        charge(gateway(max_network_retries=0))

    assert isinstance(raised.value.__cause__, stripe.APIError)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (
            401,
            {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***"},
        ),
        (
            403,
            {"type": "invalid_request_error", "message": "The provided key does not have access."},
        ),
        (
            429,
            {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"},
        ),
        (
            400,
            {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
            },
        ),
    ],
)
def test_charge_auth_rate_limit_and_idempotency_errors_are_unavailable(rsps, status, error):
    stripe_error(rsps, INTENTS, status, error)

    with pytest.raises(PaymentUnavailable):
        charge(gateway())


IN_USE = {"type": "idempotency_error", "code": "idempotency_key_in_use",
          "message": "There is currently another in-progress request using this Idempotent Key "
                     "(that probably means you submitted twice, and the other request is still going through)."}


@pytest.mark.parametrize("status", [409, 400])
def test_charge_whose_key_is_still_in_use_raises_in_progress_not_a_decline(rsps, status):
    from payments import ChargeInProgress

    stripe_error(rsps, INTENTS, status, IN_USE)
    with pytest.raises(ChargeInProgress) as raised:
        charge(gateway())
    assert isinstance(raised.value, PaymentUnavailable)  # callers that do not ask hear "try later"
    assert rsps.calls[0].request.headers["Idempotency-Key"] == KEY


def test_the_sdk_retries_a_409_before_reporting_in_progress_and_takes_the_result_once_there(rsps, monkeypatch):
    monkeypatch.setattr(stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, n, response=None: 0)
    stripe_error(rsps, INTENTS, 409, IN_USE)
    rsps.add(responses.POST, INTENTS, json=intent())
    result = charge(gateway(max_network_retries=2))
    assert result.approved and len(rsps.calls) == 2
    assert {c.request.headers["Idempotency-Key"] for c in rsps.calls} == {KEY}


def test_charge_connection_error_raises_unavailable(rsps):
    rsps.add(
        responses.POST, INTENTS, body=requests.exceptions.ConnectionError("connection refused")
    )

    with pytest.raises(PaymentUnavailable) as raised:
        charge(gateway())

    assert isinstance(raised.value.__cause__, stripe.APIConnectionError)


def test_charge_retries_a_server_error_with_the_same_idempotency_key(rsps):
    stripe_error(rsps, INTENTS, 500, {"type": "api_error", "message": "An unknown error occurred"})
    rsps.add(responses.POST, INTENTS, json=intent())

    result = StripeGateway(SECRET_KEY, webhook_secret=WEBHOOK_SECRET).charge(
        token="pm_card_visa",
        amount_cents=12345,
        currency="usd",
        idempotency_key=KEY,
        metadata=METADATA,
    )

    assert result.approved
    assert [c.request.headers["Idempotency-Key"] for c in rsps.calls] == [KEY, KEY]


def test_charge_goes_to_the_configured_api_base(rsps):
    rsps.add(responses.POST, "http://127.0.0.1:12111/v1/payment_intents", json=intent())

    result = charge(gateway(api_base="http://127.0.0.1:12111"))

    assert result.approved


def test_build_gateway_passes_api_base_to_stripe(rsps):
    rsps.add(responses.POST, "http://127.0.0.1:12112/v1/payment_intents", json=intent())
    gw = build_gateway(
        "stripe",
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        api_base="http://127.0.0.1:12112",
    )

    assert charge(gw).approved


def test_charge_logs_no_secret_or_card_token(rsps, caplog):
    stripe_error(
        rsps,
        INTENTS,
        402,
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "stolen_card",
            "message": "Your card was declined.",
        },
    )
    rsps.add(responses.POST, INTENTS, json=intent())
    caplog.set_level(logging.DEBUG, logger="payments")

    charge(gateway(), token="pm_card_visa_chargeDeclinedStolenCard")
    charge(gateway(), idempotency_key="payment-7f3c2a:attempt-2")

    logged = caplog.text
    assert logged  # outcomes are logged…
    assert SECRET_KEY not in logged  # …without the key or the card token
    assert "pm_card_visa" not in logged


# --- webhooks -------------------------------------------------------------------------------------

EVENT = {
    "id": "evt_3MtwBwLkdIwHu7ix0PqYrT3g",
    "object": "event",
    "api_version": "2026-10-28.endive",
    "created": 1680800505,
    "data": {"object": intent()},
    "livemode": False,
    "pending_webhooks": 1,
    "request": {"id": None, "idempotency_key": KEY},
    "type": "payment_intent.succeeded",
}


def signed(payload, secret=WEBHOOK_SECRET, timestamp=None):
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def test_parse_event_returns_verified_event_with_plain_dict_object():
    payload = json.dumps(EVENT)

    event = gateway().parse_event(payload.encode(), signed(payload))

    assert (event.id, event.type) == ("evt_3MtwBwLkdIwHu7ix0PqYrT3g", "payment_intent.succeeded")
    assert type(event.object) is dict
    assert event.object["id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert event.object["metadata"] == METADATA


def test_verify_event_accepts_a_signature_within_five_minutes():
    payload = json.dumps(EVENT)

    event = verify_event(
        payload.encode(), signed(payload, timestamp=int(time.time()) - 240), WEBHOOK_SECRET
    )

    assert event.id == EVENT["id"]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda p: signed(p, secret="whsec_someone_else"), id="wrong-secret"),
        pytest.param(lambda p: signed(p, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda p: "", id="missing"),
        pytest.param(lambda p: "t=not-a-number,v1=abc", id="garbled"),
        pytest.param(lambda p: signed(p.replace("succeeded", "canceled")), id="body-changed"),
    ],
)
def test_parse_event_rejects_bad_signatures(header):
    payload = json.dumps(EVENT)

    with pytest.raises(InvalidWebhook):
        gateway().parse_event(payload.encode(), header(payload))


@pytest.mark.parametrize("payload", ['{"hello": "world"}', "not json", "[]"])
def test_parse_event_rejects_signed_payload_that_is_not_an_event(payload):
    with pytest.raises(InvalidWebhook):
        gateway().parse_event(payload.encode(), signed(payload))


def test_off_session_charge_of_a_saved_card_names_its_customer_and_asks_for_no_3ds_or_moto(rsps):
    rsps.add(responses.POST, INTENTS, json=intent(customer="cus_NffrFeUfNV2Hib"))

    result = charge(gateway(moto=True), customer="cus_NffrFeUfNV2Hib", off_session=True)

    assert result.approved
    sent = form(rsps.calls[0])
    assert (sent["customer"], sent["off_session"], sent["confirm"]) == ("cus_NffrFeUfNV2Hib", "true", "true")
    # Merchant-initiated: no telephone-order flag, and no on-session 3-D Secure switch.
    assert not any(k.startswith("payment_method_options") for k in sent)
    assert "error_on_requires_action" not in sent


def test_off_session_charge_needing_authentication_is_declined_as_such(rsps):
    stripe_error(rsps, INTENTS, 402, {
        "type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
        "payment_intent": intent(status="requires_payment_method"),
    })

    result = charge(gateway(), token="pm_card_authenticationRequired", customer="cus_1", off_session=True)

    assert (result.approved, result.decline_code) == (False, "authentication_required")


def test_an_off_session_charge_without_a_customer_is_refused_before_stripe(rsps):
    with pytest.raises(ValueError):
        charge(gateway(), off_session=True)
    assert len(rsps.calls) == 0


def test_detach_posts_to_the_payment_methods_detach_endpoint(rsps):
    rsps.add(responses.POST, f"{METHODS}/pm_1Q0PsIJvEtkwdCNYMSaVuRz6/detach",
             json={"id": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6", "object": "payment_method", "customer": None})

    gateway().detach("pm_1Q0PsIJvEtkwdCNYMSaVuRz6")

    assert len(rsps.calls) == 1


def test_detach_of_a_card_stripe_no_longer_has_is_fine_but_an_outage_is_reported(rsps):
    stripe_error(rsps, f"{METHODS}/pm_gone/detach", 400,
                 {"type": "invalid_request_error", "code": "payment_method_unexpected_state"})
    gateway().detach("pm_gone")
    stripe_error(rsps, f"{METHODS}/pm_later/detach", 503, {"type": "api_error"})
    with pytest.raises(PaymentUnavailable):
        gateway().detach("pm_later")
