"""Stripe events reconcile our records: signed, deduplicated by event id, idempotent."""

import json
import time
import uuid

import pytest
import sqlalchemy as sa
from helpers import ZIP, CallActions, send_event

from ivr.extensions import db
from ivr.models import Account, Payment, ProcessedEvent
from ivr.money.models import MoneyMovement
from ivr.outbox.models import OutboxMessage


def intent(payment, status="succeeded", **extra):
    body = {
        "id": "pi_" + uuid.uuid4().hex[:24],
        "object": "payment_intent",
        "amount": payment.amount_cents,
        "currency": "usd",
        "status": status,
        "metadata": {"payment_id": str(payment.id), "call_sid": payment.call_sid or ""},
        "latest_charge": "ch_" + uuid.uuid4().hex[:24],
        "livemode": False,
    }
    body.update(extra)
    return body


@pytest.fixture
def pending_payment(app, make_account):
    """A payment whose charge went out while our process died before recording it."""
    account_id = make_account()
    with app.app_context():
        payment = Payment(attempt_key="CAdead:7", account_id=account_id, amount_cents=5000,
                          call_sid="CAdead", channel="ivr", language="en", receipt_to="+12025550143")
        db.session.add(payment)
        db.session.commit()
        db.session.refresh(payment)
        db.session.expunge(payment)
        return payment


def state(app):
    with app.app_context():
        payments = db.session.scalars(sa.select(Payment)).all()
        balance = db.session.scalar(sa.select(Account.balance_cents))
        receipts = db.session.scalars(sa.select(OutboxMessage)).all()
        return payments, balance, receipts


def test_unrecorded_charge_is_settled_from_the_succeeded_event_once(app, client, pending_payment):
    obj = intent(pending_payment)
    response = send_event(client, "payment_intent.succeeded", obj, event_id="evt_once")
    assert response.status_code == 200
    (payment,), balance, receipts = state(app)
    assert payment.status == "succeeded" and payment.stripe_payment_intent == obj["id"]
    assert payment.confirmation_number and len(payment.confirmation_number) == 8
    assert balance == 12345 - 5000
    assert len(receipts) == 1 and payment.confirmation_number in receipts[0].body

    assert send_event(client, "payment_intent.succeeded", obj, event_id="evt_once").status_code == 200
    assert send_event(client, "payment_intent.succeeded", obj).status_code == 200  # same charge, new event id
    (again,), balance, receipts = state(app)
    assert again.confirmation_number == payment.confirmation_number
    assert balance == 12345 - 5000 and len(receipts) == 1


def test_an_unrecorded_charge_with_a_fee_is_settled_as_the_call_would_have(app, client, make_account, caplog):
    account_id = make_account()
    with app.app_context():
        payment = Payment(attempt_key="CAdead:9", account_id=account_id, amount_cents=5000, fee_cents=250,
                          call_sid="CAdead", channel="ivr", language="es", receipt_to="+12025550143")
        db.session.add(payment)
        db.session.commit()
        db.session.refresh(payment)
        db.session.expunge(payment)
    send_event(client, "payment_intent.succeeded", intent(payment, amount=5250))
    (settled,), balance, (receipt,) = state(app)
    assert (settled.status, settled.amount_cents, settled.fee_cents) == ("succeeded", 5000, 250)
    assert balance == 12345 - 5000  # the fee is not the bill's
    assert "recibimos su pago de $50.00" in receipt.body and "cargo por servicio de $2.50 ($52.50 en total)" in receipt.body
    assert "differs" not in caplog.text  # Stripe's amount is ours: the amount and the fee
    with app.app_context():
        moved = db.session.execute(sa.select(MoneyMovement.type, MoneyMovement.amount_cents).order_by(MoneyMovement.id))
        assert [tuple(m) for m in moved] == [("payment", 5000), ("fee", 250)]


@pytest.mark.parametrize(
    "header",
    ["", "t=1,v1=deadbeef", "garbage"],
)
def test_bad_signature_gets_400_and_changes_nothing(app, client, pending_payment, header):
    payload = json.dumps({"id": "evt_x", "type": "payment_intent.succeeded",
                          "data": {"object": intent(pending_payment)}})
    response = client.post("/stripe/webhook", data=payload, headers={"Stripe-Signature": header})
    assert response.status_code == 400
    (payment,), balance, receipts = state(app)
    assert payment.status == "pending" and balance == 12345 and receipts == []


def test_wrong_secret_and_stale_timestamp_are_refused(app, client, pending_payment):
    assert send_event(client, "payment_intent.succeeded", intent(pending_payment), secret="whsec_other").status_code == 400
    stale = int(time.time()) - 600
    assert send_event(client, "payment_intent.succeeded", intent(pending_payment), timestamp=stale).status_code == 400
    (payment,), _, _ = state(app)
    assert payment.status == "pending"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 0


def test_unknown_event_types_are_acknowledged(client):
    assert send_event(client, "customer.created", {"id": "cus_1", "object": "customer"}).status_code == 200


def test_failed_intent_records_the_decline(app, client, pending_payment):
    obj = intent(pending_payment, status="requires_payment_method",
                 last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"})
    send_event(client, "payment_intent.payment_failed", obj)
    (payment,), balance, receipts = state(app)
    assert payment.status == "declined" and payment.decline_code == "insufficient_funds"
    assert balance == 12345 and receipts == []


def test_refund_and_dispute_show_in_the_records_and_the_balance(app, client, pending_payment, stripe_api):
    obj = intent(pending_payment)
    send_event(client, "payment_intent.succeeded", obj)
    # Refunded in Stripe's dashboard. The charge no longer lists its refunds (API 2022-11-15), so
    # each refund's id, which keys its row of the posting file, is read from Stripe.
    stripe_api.add_refund(obj["id"], 2000)
    charge = {"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 2000,
              "payment_intent": obj["id"], "refunded": False}
    send_event(client, "charge.refunded", charge)
    (payment,), balance, _ = state(app)
    assert payment.status == "succeeded" and payment.refunded_cents == 2000 and balance == 12345 - 3000
    stripe_api.add_refund(obj["id"], 3000)
    send_event(client, "charge.refunded", {**charge, "amount_refunded": 5000, "refunded": True})
    (payment,), balance, _ = state(app)
    assert payment.status == "refunded" and balance == 12345
    send_event(client, "charge.dispute.created", {"id": "dp_1", "object": "dispute", "amount": 5000,
                                                  "charge": "ch_1", "payment_intent": obj["id"], "status": "needs_response"})
    (payment,), _, _ = state(app)
    assert payment.status == "disputed"


def test_crash_between_charge_and_commit_ends_with_one_charge_and_one_receipt(app, client, make_account, stripe_api, monkeypatch):
    from ivr.money import ledger

    make_account()
    call = CallActions(client)
    call.start()
    call.silence()
    call.press("1")
    call.press(ZIP)
    call.press("1")
    pay_url = call.pay_action()

    real_settle = ledger.settle
    monkeypatch.setattr(ledger, "settle", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("process died")))
    call.pay("pm_card_visa")
    assert "something went wrong" in call.said()  # Twilio heard TwiML, not a 500
    assert len(stripe_api.successful_charges) == 1
    (payment,), balance, receipts = state(app)
    assert payment.status == "pending" and balance == 12345 and receipts == []

    # Twilio (or the caller's retry) delivers the same <Pay> result again: same key, same charge.
    monkeypatch.setattr(ledger, "settle", real_settle)
    call.post(pay_url, call.last_pay_params)
    assert "Approved:" in call.said()
    # ... and Stripe's webhook arrives too.
    charged = stripe_api.successful_charges[0]
    send_event(client, "payment_intent.succeeded", charged)
    (payment,), balance, receipts = state(app)
    assert payment.status == "succeeded" and balance == 0
    assert len(stripe_api.successful_charges) == 1 and len(receipts) == 1


@pytest.mark.parametrize("payment_id", ["9" * 30, "\u00b2", "\u0661", "-1"])
def test_an_event_whose_metadata_names_no_possible_payment_is_answered_2xx_and_changes_nothing(
    app, client, pending_payment, payment_id
):
    obj = intent(pending_payment, metadata={"payment_id": payment_id})
    assert send_event(client, "payment_intent.succeeded", obj).status_code == 200
    (payment,), balance, receipts = state(app)
    assert payment.status == "pending" and balance == 12345 and receipts == []
