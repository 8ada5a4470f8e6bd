"""Agent-assisted pay: the API drives Twilio's Payments subresource field by field, Twilio's signed
status callbacks report masked progress, and the token is charged like the IVR's.
"""

import json

import pytest
import sqlalchemy as sa
from agent_fixtures import _stripe, app_config, fake_twilio  # noqa: F401  (fixtures)
from agent_support import audit_rows, bearer, new_agent, signed_post, twilio_params
from helpers import BASE

from ivr.agents.models import AssistedPayment
from ivr.extensions import db
from ivr.models import Payment
from ivr.outbox.models import OutboxMessage

ALL_FIELDS = "payment-card-number,expiration-date,security-code,postal-code"


@pytest.fixture
def key(app):
    return new_agent(app)


class Session:
    """One assisted session: the agent's API calls and Twilio's callbacks for it."""

    def __init__(self, client, key, fake, call_sid, body):
        self.client, self.key, self.fake, self.call_sid = client, key, fake, call_sid
        self.id = body["id"]
        create = fake.payments[-1]
        self.callback_url = create["StatusCallback"]
        with client.application.app_context():
            self.payment_sid = db.session.get(AssistedPayment, self.id).payment_sid

    def act(self, action, **body):
        return self.client.post(
            f"/api/agent/assisted/{self.id}/{action}", json=body, headers=bearer(self.key)
        )

    def ask(self, field):
        response = self.act("capture", field=field)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def state(self):
        response = self.client.get(f"/api/agent/assisted/{self.id}", headers=bearer(self.key))
        assert response.status_code == 200
        return response.get_json()

    def twilio(self, **params):
        """A Payments status callback from Twilio (signed)."""
        response = signed_post(
            self.client,
            self.callback_url,
            twilio_params(self.call_sid, Sid=self.payment_sid, **params),
        )
        assert response.status_code == 204
        return self.state()


def start(client, key, fake, amount="40.00"):
    call_sid = fake.add_call()
    response = client.post(
        "/api/agent/assisted",
        json={"call_sid": call_sid, "account_number": "12345001", "amount": amount},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.get_json()
    return Session(client, key, fake, call_sid, response.get_json()), response


def capture_all(s):
    s.ask("payment-card-number")
    s.twilio(
        Capture="payment-card-number",
        PartialResult="false",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        PaymentCardType="visa",
        Required="expiration-date,security-code,postal-code",
    )
    s.ask("expiration-date")
    s.twilio(
        Capture="expiration-date",
        PartialResult="false",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        ExpirationDate="1229",
        Required="security-code,postal-code",
    )
    s.ask("security-code")
    s.twilio(
        Capture="security-code", PartialResult="false", SecurityCode="***", Required="postal-code"
    )
    s.ask("postal-code")
    return s.twilio(Capture="postal-code", PartialResult="false", PaymentCardPostalCode="30301")


def test_assisted_payment_field_by_field_with_a_reask(
    app, client, make_account, key, fake_twilio, stripe_api
):
    make_account()
    s, response = start(client, key, fake_twilio)
    assert response.headers["Location"] == f"/api/agent/assisted/{s.id}"
    create = fake_twilio.payments[0]
    assert create["StatusCallback"] == f"{BASE}/twilio/agent/assisted-status?a={s.id}"
    assert (create["TokenType"], create["PaymentConnector"]) == ("payment-method", "Default")
    assert "ChargeAmount" not in create  # tokenize: Twilio never charges, we do
    assert s.state()["status"] == "ready"

    s.ask("payment-card-number")
    assert fake_twilio.payments[-1]["Capture"] == "payment-card-number"
    entering = s.twilio(
        Capture="payment-card-number",
        PartialResult="true",
        PaymentCardNumber="xxxxxx",
        Required=ALL_FIELDS,
    )
    assert entering["fields"]["payment-card-number"] == {"state": "entering", "digits": 6}
    entered = s.twilio(
        Capture="payment-card-number",
        PartialResult="false",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        PaymentCardType="visa",
        Required="expiration-date,security-code,postal-code",
    )
    card = entered["fields"]["payment-card-number"]
    assert (card["state"], card["last4"], card["digits"]) == ("entered", "4242", 16)
    assert entered["needed"] == ["expiration-date", "security-code", "postal-code"]

    s.ask("expiration-date")
    wrong = s.twilio(
        Capture="expiration-date",
        PartialResult="false",
        ErrorType="invalid-date",
        Required="expiration-date,security-code,postal-code",
    )
    assert (
        wrong["fields"]["expiration-date"]["state"] == "error" and wrong["error"] == "invalid-date"
    )
    again = s.ask("expiration-date")  # the agent asks for the field again
    assert again["fields"]["expiration-date"] == {"state": "asked"} and again["error"] is None
    expiry = s.twilio(
        Capture="expiration-date",
        PartialResult="false",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        ExpirationDate="1229",
        Required="security-code,postal-code",
    )
    assert expiry["fields"]["expiration-date"]["state"] == "entered"
    early = s.act("complete")
    assert early.status_code == 409 and early.get_json()["needed"] == [
        "security-code",
        "postal-code",
    ]

    s.ask("security-code")
    s.twilio(
        Capture="security-code", PartialResult="false", SecurityCode="***", Required="postal-code"
    )
    s.ask("postal-code")
    ready = s.twilio(Capture="postal-code", PartialResult="false", PaymentCardPostalCode="30301")
    assert ready["needed"] == []
    processing = s.act("complete").get_json()
    assert processing["status"] == "processing"
    assert fake_twilio.payments[-1]["Status"] == "complete"

    done = s.twilio(
        Result="success",
        PaymentToken="pm_card_visa",
        ProfileId="",
        PaymentCardNumber="xxxxxxxxxxxx4242",
        PaymentCardType="visa",
        ExpirationDate="1229",
        SecurityCode="***",
        PaymentConfirmationCode="",
    )
    assert done["status"] == "approved"
    assert (done["card_brand"], done["card_last4"], done["amount"]) == ("visa", "4242", "40.00")
    assert len(done["confirmation_number"]) == 8

    keys = [p["IdempotencyKey"] for p in fake_twilio.payments]
    assert len(keys) == 7 and len(set(keys)) == 7  # create, 5 captures, complete: each its own key
    with app.app_context():
        payment = db.session.scalar(sa.select(Payment))
        assert (payment.channel, payment.amount_cents, payment.status) == (
            "agent",
            4000,
            "succeeded",
        )
        assert payment.confirmation_number == done["confirmation_number"]
        assert (
            db.session.scalar(
                sa.select(OutboxMessage.kind).where(OutboxMessage.payment_id == payment.id)
            )
            == "receipt"
        )
    assert stripe_api.requests[0].headers["Idempotency-Key"] == payment.attempt_key
    # Without the random confirmation number and timestamps, which could hold "1229" by chance.
    shown = json.dumps({k: v for k, v in done.items() if k != "confirmation_number" and not k.endswith("_at")})
    assert "1229" not in shown and "30301" not in shown and "pm_card_visa" not in shown
    with app.app_context():
        stored = json.dumps(db.session.get(AssistedPayment, s.id).fields)
        assert "1229" not in stored and "30301" not in stored
    actions = [(e.action, e.outcome, e.detail) for e in audit_rows(app)]
    assert ("assisted.capture", "asked_again", "expiration-date") in actions
    assert actions[-1][:2] == ("assisted.outcome", "approved")


def test_replayed_status_callbacks_change_nothing(
    app, client, make_account, key, fake_twilio, stripe_api
):
    make_account()
    s, _ = start(client, key, fake_twilio)
    s.ask("payment-card-number")
    error = {
        "Capture": "payment-card-number",
        "PartialResult": "false",
        "ErrorType": "invalid-card-number",
        "Required": ALL_FIELDS,
    }
    s.twilio(**error)
    s.ask("payment-card-number")
    replayed = s.twilio(**error)  # Twilio delivers the old error again after the agent re-asked
    assert (
        replayed["fields"]["payment-card-number"] == {"state": "asked"}
        and replayed["error"] is None
    )
    capture_all(s)
    s.act("complete")
    result = {
        "Result": "success",
        "PaymentToken": "pm_card_visa",
        "PaymentCardNumber": "xxxxxxxxxxxx4242",
    }
    approved = s.twilio(**result)
    replay = s.twilio(**result)
    assert replay == approved
    assert len(stripe_api.requests) == 1
    stale = s.twilio(**error)  # an old progress callback delivered again late
    assert stale == approved
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_declined_card_ends_the_session_and_a_new_one_can_start(
    client, make_account, key, fake_twilio
):
    make_account()
    s, _ = start(client, key, fake_twilio)
    capture_all(s)
    s.act("complete")
    declined = s.twilio(Result="success", PaymentToken="pm_card_chargeDeclinedExpiredCard")
    assert (declined["status"], declined["reason"]) == ("declined", "expired_card")
    assert declined["confirmation_number"] is None
    again = client.post(
        "/api/agent/assisted",
        json={"call_sid": s.call_sid, "account_number": "12345001", "amount": "40"},
        headers=bearer(key),
    )
    assert again.status_code == 201


@pytest.mark.parametrize(
    ("failure", "event", "outcome"),
    [
        ("crash", "payment_intent.succeeded", ("approved", None)),
        ("crash", "payment_intent.payment_failed", ("declined", "insufficient_funds")),
        ("unavailable", "payment_intent.succeeded", ("approved", None)),
    ],
)
def test_an_interrupted_charge_still_reaches_the_console_through_stripes_webhook(
    app, client, make_account, key, fake_twilio, monkeypatch, failure, event, outcome
):
    from test_stripe_webhooks import intent, send_event

    from payments import PaymentUnavailable

    make_account()
    s, _ = start(client, key, fake_twilio)
    capture_all(s)
    s.act("complete")
    gateway = app.extensions["ivr.gateway"]

    def interrupted(**charge):  # the attempt is on record; then the request to Stripe breaks
        if failure == "crash":
            raise SystemError("worker killed while waiting for Stripe")
        raise PaymentUnavailable("timed out")

    monkeypatch.setattr(gateway, "charge", interrupted)
    result = twilio_params(s.call_sid, Sid=s.payment_sid, Result="success", PaymentToken="pm_card_visa")
    first = signed_post(client, s.callback_url, result)
    assert first.status_code == (500 if failure == "crash" else 204)
    monkeypatch.undo()
    assert signed_post(client, s.callback_url, result).status_code == 204  # Twilio redelivers
    stuck = s.state()  # the redelivery is dropped: that result was already processed
    assert stuck["status"] == ("processing" if failure == "crash" else "failed")

    with app.app_context():
        payment = db.session.scalar(sa.select(Payment))
        assert payment.status == ("pending" if failure == "crash" else "error")
        obj = intent(payment)
    if event == "payment_intent.payment_failed":
        obj.update(status="requires_payment_method",
                   last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds"})
    assert send_event(client, event, obj).status_code == 200  # Stripe reports the charge

    shown = s.state()
    assert (shown["status"], shown["reason"]) == outcome
    assert shown["version"] > stuck["version"]  # the polling console sees a change
    assert s.state() == shown  # changed once, then stable
    with app.app_context():
        payment = db.session.get(Payment, payment.id)
        assert shown["confirmation_number"] == payment.confirmation_number
        if outcome[0] == "approved":
            assert len(payment.confirmation_number) == 8
    assert s.act("capture", field="security-code").status_code == 409
    outcomes = [e.outcome for e in audit_rows(app) if e.action == "assisted.outcome"]
    assert outcomes[-1] == outcome[0] and outcomes.count(outcome[0]) == 1


def test_cancel_ends_the_session_without_charging(
    client, make_account, key, fake_twilio, stripe_api
):
    make_account()
    s, _ = start(client, key, fake_twilio)
    s.ask("payment-card-number")
    cancelled = s.act("cancel").get_json()
    assert cancelled["status"] == "cancelled"
    assert fake_twilio.payments[-1]["Status"] == "cancel"
    late = s.twilio(Result="success", PaymentToken="pm_card_visa")  # too late: nothing is charged
    assert late["status"] == "cancelled" and stripe_api.requests == []
    assert s.act("capture", field="security-code").status_code == 409


def test_caller_hanging_up_during_assisted_pay(client, make_account, key, fake_twilio, stripe_api):
    make_account()
    s, _ = start(client, key, fake_twilio)
    s.ask("payment-card-number")
    assert s.twilio(Result="caller-hung-up")["status"] == "caller_hung_up"
    assert stripe_api.requests == []


def test_forged_or_misdirected_callbacks_are_ignored(app, client, make_account, key, fake_twilio):
    make_account()
    s, _ = start(client, key, fake_twilio)
    s.ask("payment-card-number")
    params = twilio_params(
        s.call_sid, Sid=s.payment_sid, Result="success", PaymentToken="pm_card_visa"
    )
    forged = client.post(
        s.callback_url.replace(BASE, ""), data=params, headers={"X-Twilio-Signature": "forged"}
    )
    assert forged.status_code == 403
    other_call = twilio_params(
        "CA" + "f" * 32, Sid=s.payment_sid, Result="success", PaymentToken="pm_card_visa"
    )
    assert signed_post(client, s.callback_url, other_call).status_code == 204
    assert s.state()["status"] == "capturing"


def test_assisted_endpoints_refuse_bad_keys_and_bad_input(
    app, client, make_account, key, fake_twilio
):
    make_account()
    s, _ = start(client, key, fake_twilio)
    wrong = {"Authorization": "Bearer ivrak_wrong"}
    assert (
        client.post(
            f"/api/agent/assisted/{s.id}/capture", json={"field": "security-code"}, headers=wrong
        ).status_code
        == 401
    )
    assert client.get(f"/api/agent/assisted/{s.id}", headers=wrong).status_code == 401
    before = len(fake_twilio.payments)
    assert s.act("capture", field="pin").status_code == 422
    assert s.act("capture").status_code == 422
    assert (
        client.post(
            "/api/agent/assisted/ap_nope/complete", headers=bearer(key), json={}
        ).status_code
        == 404
    )
    assert len(fake_twilio.payments) == before
    busy = client.post(
        "/api/agent/assisted",
        json={"call_sid": s.call_sid, "account_number": "12345001"},
        headers=bearer(key),
    )
    assert busy.status_code == 409 and busy.get_json()["busy"] == s.id


def test_assisted_start_on_an_ended_call_is_409(client, make_account, key, fake_twilio):
    make_account()
    call_sid = fake_twilio.add_call(status="completed")
    response = client.post(
        "/api/agent/assisted",
        json={"call_sid": call_sid, "account_number": "12345001"},
        headers=bearer(key),
    )
    assert response.status_code == 409 and response.get_json()["error"] == "call_not_live"
    assert fake_twilio.payments == []


def test_another_agent_can_follow_the_session(app, client, make_account, key, fake_twilio):
    make_account()
    s, _ = start(client, key, fake_twilio)
    other = new_agent(app, "Blake")
    seen = client.get(f"/api/agent/assisted/{s.id}", headers=bearer(other))
    assert seen.status_code == 200 and seen.get_json()["agent"] == "Alex Agent"


def test_a_convenience_fee_is_not_charged_on_an_assisted_payment(app, client, make_account, key, fake_twilio, stripe_api):
    app.config["CONVENIENCE_FEE_CENTS"] = 250  # the co-op charges callers who pay on their own
    make_account()
    s, _ = start(client, key, fake_twilio)
    capture_all(s)
    s.act("complete")
    done = s.twilio(Result="success", PaymentToken="pm_card_visa", ProfileId="",
                    PaymentCardNumber="xxxxxxxxxxxx4242", PaymentCardType="visa")
    assert done["status"] == "approved" and done["amount"] == "40.00"
    (charge,) = stripe_api.successful_charges
    assert charge["amount"] == 4000
    with app.app_context():
        assert db.session.scalar(sa.select(Payment.fee_cents)) == 0
