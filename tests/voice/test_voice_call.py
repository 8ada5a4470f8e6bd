"""Whole calls through the real webhooks, signed like Twilio, with Stripe faked at the HTTP layer."""

import re

import pytest
import sqlalchemy as sa
from helpers import BASE, ZIP, CallActions

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.outbox.models import OutboxMessage

pytestmark = pytest.mark.usefixtures("stripe_api")


def identify_by_caller_id(call):
    call.start()
    call.silence()  # no language key: English
    # The account is offered without its digits: a spoofed caller ID learns nothing of its number.
    assert "For the account on file for this phone, press 1" in call.said() and "5 0 0 1" not in call.said()
    call.press("1")
    return call.press(ZIP)  # the service ZIP code: caller ID does not give it away


def payments(app):
    with app.app_context():
        return db.session.scalars(sa.select(Payment).order_by(Payment.id)).all()


def account(app, number="12345001"):
    with app.app_context():
        return db.session.scalar(sa.select(Account).where(Account.account_number == number))


def receipts(app):
    with app.app_context():
        return db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")).all()


def confirmation_in(said):
    match = re.search(r"Confirmation number ((?:\d ){7}\d)", said)
    assert match, said
    return match.group(1).replace(" ", "")


def test_whole_call_pays_full_balance_and_queues_one_receipt(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    call.start()
    assert "Thanks for calling Riverbend Electric Cooperative." in call.said()
    assert call.root.xpath("./Gather/Say[2]/@language") == ["es-US"]  # the Spanish option, in Spanish
    identify_by_caller_id(call)
    said = call.said()
    assert "one hundred twenty-three dollars and forty-five cents, due Saturday, December fifth" in said
    assert "To pay in full, press 1" in said

    call.press("1")
    pay = call.root.xpath("./Pay")[0]
    assert pay.get("tokenType") == "payment-method"
    assert pay.get("chargeAmount") is None  # tokenize mode: Twilio never charges
    assert pay.get("paymentConnector") == "Default"
    assert pay.get("validCardTypes") == "visa mastercard amex discover"
    assert pay.get("language") == "en-US"
    assert pay.get("action").startswith(f"{BASE}/twilio/voice/pay?seq=")

    call.pay("pm_card_visa")
    said = call.said()
    assert "Approved: one hundred twenty-three dollars and forty-five cents." in said
    confirmation = confirmation_in(said)

    assert len(stripe_api.successful_charges) == 1
    charge = stripe_api.successful_charges[0]
    assert charge["amount"] == 12345 and charge["currency"] == "usd"
    assert charge["metadata"]["call_sid"] == call.call_sid
    (payment,) = payments(app)
    assert payment.status == "succeeded" and payment.confirmation_number == confirmation
    assert payment.card_brand == "visa" and payment.card_last4 == "4242"
    assert stripe_api.requests[0].headers["Idempotency-Key"] == payment.attempt_key
    assert account(app).balance_cents == 0
    (receipt,) = receipts(app)
    assert receipt.to_number == "+12025550143" and confirmation in receipt.body
    assert "$123.45" in receipt.body and "5001" in receipt.body and "12345001" not in receipt.body

    call.press("1")  # hear it again
    assert confirmation_in(call.said()) == confirmation
    call.silence()
    assert "To save this card for next time, press 1." in call.said()  # kept only on that key
    call.silence()
    assert call.root.xpath("./Hangup") and "Goodbye" in call.said()
    call.status("completed")
    assert call.last_status == 204
    with app.app_context():
        session = db.session.scalar(sa.select(CallSession).where(CallSession.call_sid == call.call_sid))
        assert session.ended_at is not None and session.call_status == "completed"


def test_partial_amount_keyed_with_star_is_read_back_and_charged(app, client, make_account, stripe_api):
    make_account(phone="+12025550199")
    call = CallActions(client, from_="anonymous")
    call.start()
    call.silence()
    assert "Enter the account number" in call.said()
    call.press("12345001")
    call.press("0199")
    call.press("2")
    assert "You can pay one dollar to one hundred twenty-three dollars and forty-five cents" in call.said()
    call.press("50*25")
    assert "You entered fifty dollars and twenty-five cents." in call.said()
    call.press("1")
    call.pay("pm_card_mastercard")
    assert "Approved: fifty dollars and twenty-five cents." in call.said()
    assert stripe_api.successful_charges[0]["amount"] == 5025
    assert account(app).balance_cents == 12345 - 5025

    second = CallActions(client, from_="anonymous")
    second.start()
    second.silence()
    second.press("12345001")
    second.press("0199")
    assert "Your balance is seventy-three dollars and twenty cents" in second.said()


OUT_OF_RANGE = "The amount must be from one dollar to one hundred twenty-three dollars and forty-five cents."


@pytest.mark.parametrize(
    ("keyed", "explanation"),
    [
        ("1*234", "Sorry, I didn't get that amount."),
        ("12#3", "Sorry, I didn't get that amount."),
        ("200", OUT_OF_RANGE),
        ("0*50", OUT_OF_RANGE),
    ],
)
def test_amount_outside_the_rules_is_explained_and_asked_again(client, make_account, keyed, explanation):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("2")
    call.press(keyed)
    said = call.said()
    assert said.startswith(explanation), said
    assert "Enter the amount in dollars" in said
    assert call.root.xpath("./Gather/@finishOnKey") == ["#"]


def test_unknown_account_and_wrong_last_four_get_exactly_the_same_words(client, make_account):
    make_account()
    unknown = CallActions(client, from_="anonymous")
    unknown.start()
    unknown.silence()
    unknown.press("99999999")
    unknown.press("0143")
    wrong = CallActions(client, from_="anonymous")
    wrong.start()
    wrong.silence()
    wrong.press("12345001")
    wrong.press("9999")
    assert unknown.said() == wrong.said()
    assert "That didn't match our records" in wrong.said()


def test_three_failed_identifications_end_politely(client, make_account):
    make_account()
    call = CallActions(client, from_="anonymous")
    call.start()
    call.silence()
    for _ in range(3):
        call.press("12345001")
        call.press("0000")
    assert call.root.xpath("./Hangup")
    assert "didn't match our records" in call.said() and "Goodbye" in call.said()


def test_lockout_after_five_failures_in_fifteen_minutes_applies_to_every_caller(app, client, make_account, monkeypatch):
    from datetime import timedelta

    from ivr.models import utcnow
    from ivr.voice import identity

    make_account()
    for attempt in range(5):
        call = CallActions(client, from_=f"+1202555{attempt:04d}")
        call.start()
        call.silence()
        call.press("12345001")
        call.press("1111")
    honest = CallActions(client)  # the member, from the phone on file, with the right digits
    identify_by_caller_id(honest)
    assert "that didn't match our records" in honest.said()
    assert "Your balance" not in honest.said()

    later = utcnow() + timedelta(minutes=76)
    monkeypatch.setattr(identity, "utcnow", lambda: later)
    after = CallActions(client)
    identify_by_caller_id(after)
    assert "Your balance is" in after.said()


def test_decline_then_success_charges_once_and_sends_one_receipt(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay("pm_card_visa_chargeDeclinedInsufficientFunds")
    said = call.said()
    assert "declined for insufficient funds" in said and "To try again or use another card, press 1" in said
    call.press("1")
    assert call.root.xpath("./Pay")
    call.pay("pm_card_visa")
    assert "Approved:" in call.said()
    statuses = sorted(p.status for p in payments(app))
    assert statuses == ["declined", "succeeded"]
    assert len(stripe_api.successful_charges) == 1
    assert len(receipts(app)) == 1


def test_decline_reasons_are_said_in_plain_words(client, make_account):
    make_account()
    expected = {
        "pm_card_chargeDeclinedExpiredCard": "your card has expired",
        "pm_card_chargeDeclinedIncorrectCvc": "security code didn't match",
        "pm_card_visa_chargeDeclined": "your card was declined.",
    }
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    for token, words in expected.items():
        call.pay(token)
        assert words in call.said()
        call.press("1")
    # three cards tried: a fourth is not offered
    assert "can't take a card payment" in call.said()
    assert call.root.xpath("//Pay") == []


def test_pay_result_delivered_twice_gets_the_same_answer_and_one_charge(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    pay_url = call.pay_action()
    call.pay("pm_card_visa")
    first_xml = call.said()
    call.post(pay_url, call.last_pay_params)
    assert call.said() == first_xml
    assert len(stripe_api.intents) == 1
    assert len(payments(app)) == 1 and len(receipts(app)) == 1
    assert account(app).balance_cents == 0


def test_hang_up_during_pay_charges_nothing_and_closes_the_call(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay(result="caller-hung-up")
    assert call.root.xpath("./Hangup")
    call.status("completed")
    assert stripe_api.intents == [] and payments(app) == []
    assert account(app).balance_cents == 12345


def test_star_during_pay_goes_back_to_the_payment_menu(client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay(result="caller-interrupted-with-star")
    assert "To pay in full, press 1" in call.said()
    assert stripe_api.intents == []


def test_stripe_500_records_no_charge_and_the_caller_can_try_again(app, client, make_account, stripe_api):
    make_account()
    stripe_api.fail_next = 1
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay("pm_card_visa")
    said = call.said()
    assert "can't reach the card processor" in said and "not charged" in said
    assert [p.status for p in payments(app)] == ["error"]
    assert account(app).balance_cents == 12345 and receipts(app) == []
    call.press("1")
    call.pay("pm_card_visa")
    assert "Approved:" in call.said()
    assert sorted(p.status for p in payments(app)) == ["error", "succeeded"]
    assert len(stripe_api.successful_charges) == 1 and len(receipts(app)) == 1


def test_forged_signature_gets_403_and_changes_nothing(app, client, make_account, stripe_api):
    make_account()
    forged = CallActions(client, token="not-the-auth-token")
    forged.start()
    assert forged.last_status == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 0

    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    pay_url = call.pay_action()
    params = call.params(Result="success", PaymentToken="pm_card_visa")
    call.post(pay_url, params, signature="bm90IGEgc2lnbmF0dXJl")
    assert call.last_status == 403
    # signed for another host (the Host header is not trusted)
    call.post(pay_url.replace(BASE, "https://evil.example"), params)
    assert stripe_api.intents == [] and payments(app) == []


def test_spanish_caller_hears_spanish_everywhere_including_pay_and_receipt(app, client, make_account):
    make_account()
    call = CallActions(client)
    call.start()
    call.press("2")
    assert "Para la cuenta registrada con este teléfono" in call.said()
    assert set(call.root.xpath("//Say/@language")) == {"es-US"}
    call.press("1")
    call.press(ZIP)
    assert "ciento veintitrés dólares con cuarenta y cinco centavos" in call.said()
    assert "el sábado cinco de diciembre" in call.said()
    call.press("1")
    assert call.root.xpath("./Pay/@language") == ["es-MX"]
    assert "Número de tarjeta, y luego numeral." in " ".join(call.root.xpath("./Pay/Prompt/Say/text()"))
    call.pay("pm_card_visa")
    assert "Pago aprobado" in call.said()
    (receipt,) = receipts(app)
    assert "recibimos su pago de $123.45" in receipt.body


def test_member_whose_account_says_spanish_hears_spanish_once_identified(client, make_account):
    make_account(language="es")
    call = CallActions(client)
    identify_by_caller_id(call)
    assert "Su saldo es de" in call.said()


def test_credit_balance_is_said_and_no_payment_offered(client, make_account):
    make_account(balance_cents=-2500)
    call = CallActions(client)
    identify_by_caller_id(call)
    assert "credit of twenty-five dollars" in call.said()
    assert call.root.xpath("./Hangup") and not call.root.xpath("./Gather")


@pytest.mark.parametrize("status", ["no_ivr_payments", "closed"])
def test_accounts_that_cannot_pay_by_phone_hear_only_call_the_office(client, make_account, status):
    make_account(status=status)
    call = CallActions(client, from_="anonymous")
    call.start()
    call.silence()
    call.press("12345001")
    call.press("0143")
    assert "Please call the office" in call.said() and "balance" not in call.said()
    assert call.root.xpath("./Hangup")


def test_several_accounts_on_one_phone_are_listed_by_last_four(client, make_account):
    make_account(account_number="12345001")
    make_account(account_number="12345002", balance_cents=5000)
    call = CallActions(client)
    call.start()
    call.silence()
    said = call.said()
    assert "This phone has two accounts" in said
    assert "one ending in 5 0 0 1, press 1" in said and "5 0 0 2, press 2" in said
    call.press("2")
    call.press(ZIP)
    assert "fifty dollars" in call.said()


def test_silence_reprompts_twice_then_says_goodbye(client, make_account):
    make_account()
    call = CallActions(client, from_="anonymous")
    call.start()
    call.silence()  # the greeting's silence means English
    for _ in range(2):
        call.silence()
        assert call.said().startswith("I didn't hear a key.")
        assert "Enter the account number" in call.said()
    call.silence()
    assert "We didn't hear from you" in call.said() and call.root.xpath("./Hangup")


def test_invalid_key_is_explained_and_star_repeats(client, make_account):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("7")
    assert call.said().startswith("Sorry, that isn't a choice.")
    assert "To pay in full" in call.said()
    call.press("*")
    assert call.said().startswith("Your balance is")


def test_zero_reaches_the_agent_only_when_configured(app_config, database_url):
    from ivr import create_app

    app_config["AGENT_TRANSFER_NUMBER"] = "+12025550100"
    app_config["PAYMENT_GATEWAY"] = "sandbox"
    app = create_app(app_config)
    import ivr.all_models  # noqa: F401

    with app.app_context():
        db.create_all()
    try:
        call = CallActions(app.test_client(), from_="anonymous")
        call.start()
        call.silence()
        call.press("0")
        assert call.root.xpath("./Dial/Number/text()") == ["+12025550100"]
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()


def test_zero_without_an_agent_is_an_invalid_key(client, make_account):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("0")
    assert call.said().startswith("Sorry, that isn't a choice.")


def test_every_url_given_to_twilio_is_absolute_under_the_public_base(client, make_account):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    urls = call.root.xpath("//@action | //Redirect/text()")
    call.press("1")
    urls += call.root.xpath("//@action | //@statusCallback")
    assert urls and all(u.startswith(BASE + "/twilio/") for u in urls)


def test_replayed_gather_gets_the_saved_answer_and_does_not_advance(client, make_account):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    url = call.gather_action()
    call.press("2")
    first = call.said()
    call.post(url, call.params(Digits="2"))
    assert call.said() == first
    call.press("*")  # still in ENTER_AMOUNT, not somewhere further
    assert "Enter the amount in dollars" in call.said()


def test_logs_of_a_whole_call_hold_no_secrets_or_full_numbers(app, client, make_account, caplog):
    import logging

    make_account()
    caplog.set_level(logging.DEBUG)
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay("pm_card_visa_chargeDeclined")
    call.press("1")
    call.pay("pm_card_visa")
    call.status()
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    # the caller's number and the account were logged, both masked
    assert "…0143" in logged and "…5001" in logged
    for secret in ("12345001", "+12025550143", "2025550143", "pm_card_visa", "sk_test_not_a_real_key",
                   "whsec_test_secret", "test-auth-token", "4242424242424242"):
        assert secret not in logged, secret
