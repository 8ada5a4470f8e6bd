"""Refunds from our side: one Stripe Refund per request, never more than remains, recorded exactly once."""

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import sqlalchemy as sa
from helpers import send_event

from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import refunds
from ivr.money.charge import APPROVED, charge_token
from ivr.money.models import MoneyMovement, RefundRequest
from payments import PaymentUnavailable
from payments.sandbox import SandboxGateway
from payments.stripe_gateway import StripeGateway

SECRET_KEY = "sk_test_refunds_not_real"
REFUNDS = "https://api.stripe.com/v1/refunds"


@pytest.fixture
def paid(app, stripe_api, make_account):
    """A $50.00 payment charged through Stripe's fake; returns its id (the account owed $123.45 before)."""
    account_id = make_account()
    with app.app_context():
        outcome = charge_token(db.session.get(Account, account_id), 5000, "CApaid:1", "pm_card_visa", channel="ivr",
                               call_sid=None, language="en", caller="+12025550143")
        db.session.commit()
        assert outcome.status == APPROVED
        return outcome.payment_id


def refund(app, payment_id, amount, number=None, staff="Alex Admin"):
    with app.app_context():
        return refunds.refund(db.session.get(Payment, payment_id), amount, staff, request_number=number)


def ledger_state(app):
    """(refund movements as (entry id, cents), refunded cents, balance, payment status)."""
    with app.app_context():
        moved = db.session.execute(
            sa.select(MoneyMovement.entry_id, MoneyMovement.amount_cents).where(MoneyMovement.type == "refund")
            .order_by(MoneyMovement.id)
        ).all()
        payment = db.session.scalar(sa.select(Payment))
        return [tuple(row) for row in moved], payment.refunded_cents, payment.account.balance_cents, payment.status


def refund_posts(stripe_api):
    return [r for r in stripe_api.requests if urlsplit(r.url).path == "/v1/refunds"]


def test_partial_refund_sends_one_stripe_refund_with_the_request_key(app, stripe_api, paid):
    outcome = refund(app, paid, 2000, number=1)

    assert (outcome.status, outcome.amount_cents) == (refunds.REFUNDED, 2000)
    (sent,) = refund_posts(stripe_api)
    assert sent.headers["Idempotency-Key"] == f"refund:{paid}:1"
    form = {k: v[0] for k, v in parse_qs(sent.body).items()}
    assert (form["amount"], form["payment_intent"]) == ("2000", stripe_api.successful_charges[0]["id"])
    (stripe_refund,) = stripe_api.refunds
    assert outcome.refund_id == stripe_refund["id"]
    assert ledger_state(app) == ([(f"re_{stripe_refund['id']}", -2000)], 2000, 12345 - 5000 + 2000, "succeeded")


def test_double_click_with_the_same_request_number_refunds_once(app, stripe_api, paid):
    first = refund(app, paid, 2000, number=1)
    second = refund(app, paid, 2000, number=1)

    assert first == second
    assert len(stripe_api.refunds) == 1
    assert ledger_state(app)[1:] == (2000, 12345 - 5000 + 2000, "succeeded")


def test_a_request_number_someone_else_took_is_refused(app, stripe_api, paid):
    # Two staff members opened the payment's page at once; both forms carry request number 1.
    refund(app, paid, 1000, number=1, staff="Alex Admin")

    outcome = refund(app, paid, 2500, number=1, staff="Sam Supervisor")

    assert (outcome.status, outcome.reason) == (refunds.REFUSED, "request_number_taken")
    assert [r["amount"] for r in stripe_api.refunds] == [1000]


def test_empty_amount_refunds_what_remains_and_then_nothing_is_left(app, stripe_api, paid):
    refund(app, paid, 2000)

    rest = refund(app, paid, None)
    after = refund(app, paid, None)

    assert (rest.status, rest.amount_cents) == (refunds.REFUNDED, 3000)
    assert (after.status, after.reason) == (refunds.REFUSED, "nothing_left")
    assert [r["amount"] for r in stripe_api.refunds] == [2000, 3000]
    assert ledger_state(app)[1:] == (5000, 12345, "refunded")


@pytest.mark.parametrize(("amount", "reason"), [(5001, "more_than_remains"), (0, "not_positive"), (-100, "not_positive")])
def test_an_amount_that_does_not_fit_is_refused_before_stripe(app, stripe_api, paid, amount, reason):
    outcome = refund(app, paid, amount)

    assert (outcome.status, outcome.reason) == (refunds.REFUSED, reason)
    assert refund_posts(stripe_api) == []
    assert ledger_state(app) == ([], 0, 12345 - 5000, "succeeded")


def test_a_disputed_payment_is_not_refunded(app, client, stripe_api, paid):
    intent = stripe_api.successful_charges[0]["id"]
    send_event(client, "charge.dispute.created", {"id": "dp_1", "object": "dispute", "amount": 5000,
                                                  "payment_intent": intent, "status": "needs_response", "created": 1})

    outcome = refund(app, paid, 1000)

    assert (outcome.status, outcome.reason) == (refunds.REFUSED, "not_refundable")
    assert refund_posts(stripe_api) == []


def test_webhook_first_then_the_api_answer_records_one_refund(app, client, stripe_api, paid):
    delivered = []

    def webhook_arrives_first(stripe_refund):
        delivered.append(send_event(client, "refund.created", stripe_refund).status_code)

    stripe_api.before_refund_answer = webhook_arrives_first
    outcome = refund(app, paid, 2000, number=1)

    assert delivered == [200]
    assert outcome.status == refunds.REFUNDED
    (stripe_refund,) = stripe_api.refunds
    assert ledger_state(app) == ([(f"re_{stripe_refund['id']}", -2000)], 2000, 12345 - 5000 + 2000, "succeeded")
    with app.app_context():
        request = db.session.scalar(sa.select(RefundRequest))
        assert (request.status, request.stripe_refund_id) == ("succeeded", stripe_refund["id"])


def test_api_answer_first_then_the_webhooks_record_one_refund(app, client, stripe_api, paid):
    refund(app, paid, 2000, number=1)
    (stripe_refund,) = stripe_api.refunds
    before = ledger_state(app)

    send_event(client, "refund.created", stripe_refund)
    send_event(client, "charge.refunded", {"id": stripe_refund["charge"], "object": "charge", "amount": 5000,
                                           "amount_refunded": 2000, "payment_intent": stripe_refund["payment_intent"],
                                           "refunded": False})

    assert ledger_state(app) == before
    assert before[1:] == (2000, 12345 - 5000 + 2000, "succeeded")


def test_lost_answer_is_asked_again_with_the_same_key_and_refunds_once(app, stripe_api, paid):
    stripe_api.drop_next = 1

    lost = refund(app, paid, 2000, number=1)
    # While the answer is unknown, its amount is held: no one can refund past the charge meanwhile.
    too_much = refund(app, paid, 3500, number=2)
    again = refund(app, paid, 2000, number=1)

    assert lost.status == refunds.PENDING
    assert (too_much.status, too_much.reason) == (refunds.REFUSED, "more_than_remains")
    assert again.status == refunds.REFUNDED
    assert len(stripe_api.refunds) == 1
    assert ledger_state(app)[1:] == (2000, 12345 - 5000 + 2000, "succeeded")


def test_a_refund_stripe_refuses_moves_nothing(app, client, stripe_api, paid):
    # Refunded in full in Stripe's dashboard a moment ago; its webhook has not arrived yet.
    stripe_api.add_refund(stripe_api.successful_charges[0]["id"], 5000)

    outcome = refund(app, paid, 1000)

    assert (outcome.status, outcome.reason) == (refunds.REFUSED, "amount_too_large")
    assert ledger_state(app) == ([], 0, 12345 - 5000, "succeeded")
    with app.app_context():
        assert db.session.scalar(sa.select(RefundRequest.status)) == "refused"


def test_a_failed_refund_is_not_posted(app, client, stripe_api, paid):
    intent = stripe_api.successful_charges[0]["id"]
    failed = {"id": "re_failed", "object": "refund", "amount": 1000, "payment_intent": intent, "status": "failed",
              "failure_reason": "expired_or_canceled_card", "created": 1}

    send_event(client, "refund.failed", failed)

    assert ledger_state(app) == ([], 0, 12345 - 5000, "succeeded")


# --- the gateways -------------------------------------------------------------------------------


def stripe_refund(**extra):
    """A Refund shaped like docs.stripe.com/api/refunds/object."""
    body = {"id": "re_3MtwBwLkdIwHu7ix0tBVpb2A", "object": "refund", "amount": 1500, "currency": "usd",
            "charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "status": "succeeded", "created": 1763305200, "reason": None, "metadata": {"payment_id": "7"}}
    body.update(extra)
    return body


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def gateway():
    return StripeGateway(SECRET_KEY, webhook_secret="whsec_x", max_network_retries=0)


def ask(gw, **kwargs):
    args = {"payment_intent_id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "amount_cents": 1500,
            "idempotency_key": "refund:7:1", "metadata": {"payment_id": "7"}}
    args.update(kwargs)
    return gw.refund(**args)


def test_stripe_gateway_refund_reads_the_refund(rsps):
    rsps.add(responses.POST, REFUNDS, json=stripe_refund())

    result = ask(gateway())

    assert (result.refund_id, result.amount_cents, result.status) == ("re_3MtwBwLkdIwHu7ix0tBVpb2A", 1500, "succeeded")
    assert result.created_at.isoformat() == "2025-11-16T15:00:00+00:00"
    assert result.money_moved
    sent = rsps.calls[0].request
    assert sent.headers["Idempotency-Key"] == "refund:7:1"
    form = {k: v[0] for k, v in parse_qs(sent.body).items()}
    assert form == {"payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "amount": "1500", "metadata[payment_id]": "7"}


def test_stripe_gateway_refund_refused_is_a_value(rsps):
    rsps.add(responses.POST, REFUNDS, status=400, json={"error": {
        "type": "invalid_request_error", "code": "charge_already_refunded",
        "message": "Charge ch_1 has already been refunded."}})

    result = ask(gateway())

    assert (result.status, result.failure_code, result.money_moved) == ("refused", "charge_already_refunded", False)


@pytest.mark.parametrize("status", [500, 429, 401])
def test_stripe_gateway_refund_unknown_outcome_raises_unavailable(rsps, status):
    rsps.add(responses.POST, REFUNDS, status=status, json={"error": {"type": "api_error", "message": "x"}})

    with pytest.raises(PaymentUnavailable):
        ask(gateway())


def test_stripe_gateway_lists_the_refunds_of_a_payment_intent(rsps):
    page = {"object": "list", "url": "/v1/refunds", "has_more": False,
            "data": [stripe_refund(id="re_2", amount=500), stripe_refund(id="re_1", amount=1000)]}
    rsps.add(responses.GET, REFUNDS, json=page)

    found = gateway().refunds_of("pi_3MtwBwLkdIwHu7ix28a3tqPa")

    assert [(r.refund_id, r.amount_cents) for r in found] == [("re_2", 500), ("re_1", 1000)]
    assert parse_qs(urlsplit(rsps.calls[0].request.url).query)["payment_intent"] == ["pi_3MtwBwLkdIwHu7ix28a3tqPa"]


def test_sandbox_refund_succeeds_with_one_id_per_key():
    sandbox = SandboxGateway(webhook_secret="whsec_x")

    first, again, other = ask(sandbox), ask(sandbox), ask(sandbox, idempotency_key="refund:7:2")

    assert first.status == "succeeded" and first.money_moved
    assert first.refund_id == again.refund_id != other.refund_id
    assert sandbox.refunds_of("pi_3MtwBwLkdIwHu7ix28a3tqPa") == []


def test_refund_logs_no_secret_key(rsps, caplog):
    rsps.add(responses.POST, REFUNDS, json=stripe_refund())
    caplog.set_level("DEBUG")

    ask(gateway())

    assert SECRET_KEY not in caplog.text
