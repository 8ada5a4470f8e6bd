"""The card on file on a call: offered after a keyed payment, saved only on its key, paid with off-session
(no ``<Pay>``), declined in plain words with the keypad offered, forgotten with 9, charged once however
often Twilio delivers the key. English and Spanish, through the real webhooks, Stripe at the HTTP layer.
"""

import re
import threading
import time
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from helpers import ZIP, CallActions

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.money.models import MoneyMovement, SavedCard
from ivr.outbox.models import OutboxMessage
from ivr.voice import webhooks as voice
from payments.sandbox_cards import sandbox_customer

pytestmark = pytest.mark.usefixtures("stripe_api")

WORDS = {
    "en": {
        "offer": "We can keep this card on file, so next time you won't need to enter it. To save this card for "
                 "next time, press 1. To finish without saving it, press 2.",
        "saved": "Your card is saved. Next time, you can pay with it without entering the number.",
        "choice": "To pay one hundred twenty-three dollars and forty-five cents with your {card} ending in {last4}, "
                  "press 1. For another card, press 2. To remove this card from file, press 9.",
        "visa": "Visa",
        "approved": "Approved: one hundred twenty-three dollars and forty-five cents.",
        "declined": "Sorry, your Visa ending in {last4} was declined. Nothing was charged.",
        "bank": "Sorry, your bank wants to confirm this payment with you directly, which can't be done on a "
                "call. Your Visa ending in 3 1 5 5 was not charged.",
        "keypad": "To pay one hundred twenty-three dollars and forty-five cents with a card on your keypad, press 1.",
        "forgotten": "Your saved card is removed. We won't charge it again.",
        "goodbye": "Goodbye.",
    },
    "es": {
        "offer": "Podemos guardar esta tarjeta para que la próxima vez no tenga que marcarla. Para guardar esta "
                 "tarjeta para la próxima vez, oprima 1. Para terminar sin guardarla, oprima 2.",
        "saved": "Guardamos su tarjeta. La próxima vez podrá pagar con ella sin marcar el número.",
        "choice": "Para pagar ciento veintitrés dólares con cuarenta y cinco centavos con su {card} que termina en "
                  "{last4}, oprima 1. Para usar otra tarjeta, el 2. Para borrar esta tarjeta, el 9.",
        "visa": "tarjeta Visa",
        "approved": "Pago aprobado: ciento veintitrés dólares con cuarenta y cinco centavos.",
        "declined": "Perdón, su tarjeta Visa que termina en {last4} fue rechazada. No se cobró nada.",
        "bank": "Perdón, su banco quiere confirmar este pago directamente con usted, y eso no se puede hacer "
                "en una llamada. No se cobró nada a su tarjeta Visa que termina en 3 1 5 5.",
        "keypad": "Para pagar ciento veintitrés dólares con cuarenta y cinco centavos marcando una tarjeta en el "
                  "teclado, oprima 1.",
        "forgotten": "Borramos su tarjeta guardada; no volveremos a cobrarle con ella.",
        "goodbye": "Adiós.",
    },
}
LANGS = ["en", "es"]


def at_summary(client, lang):
    """A call from the phone on file, identified, at the balance and its menu, in ``lang``."""
    call = CallActions(client)
    call.start()
    if lang == "es":
        call.press("2")
    else:
        call.silence()
    call.press("1")  # the account ending in 5 0 0 1
    call.press(ZIP)
    return call


def card_choice(client, lang):
    """A call that chose to pay the whole balance: it hears the card on file offered."""
    call = at_summary(client, lang)
    call.press("1")
    return call


def keep_card(app, payment_method="pm_card_visa", last4="4242", account_number="12345001"):
    """A card on file, as a call's save would leave it."""
    with app.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.account_number == account_number))
        db.session.add(SavedCard(account_id=account.id, stripe_customer=sandbox_customer(payment_method),
                                 stripe_payment_method=payment_method, card_brand="visa", card_last4=last4,
                                 consent_channel="ivr", consent_words="To save this card for next time, press 1."))
        db.session.commit()


def saved_cards(app):
    with app.app_context():
        return db.session.scalars(sa.select(SavedCard)).all()


def payments(app):
    with app.app_context():
        return db.session.scalars(sa.select(Payment).order_by(Payment.id)).all()


def balance(app):
    with app.app_context():
        return db.session.scalar(sa.select(Account.balance_cents).where(Account.account_number == "12345001"))


def receipts(app):
    with app.app_context():
        return db.session.scalars(sa.select(OutboxMessage.payment_id).where(OutboxMessage.kind == "receipt")).all()


def posted(app):
    with app.app_context():
        return db.session.execute(sa.select(MoneyMovement.payment_id, MoneyMovement.amount_cents)).all()


def intent_form(stripe_api, index=-1):
    request = stripe_api.requests[index]
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return {k: v[0] for k, v in parse_qs(body).items()}


def spaced(last4):
    return " ".join(last4)


# --- saving ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_after_a_keyed_payment_the_card_is_saved_on_its_key_with_the_words_heard(app, client, make_account, lang):
    make_account()
    call = card_choice(client, lang)  # no card on file yet: straight to <Pay>
    assert call.root.xpath("./Pay")
    call.pay("pm_card_visa")
    assert WORDS[lang]["approved"] in call.said()
    assert saved_cards(app) == []  # nothing is kept before the member says so

    call.silence()  # after the confirmation number
    offer = call.said()
    assert offer == WORDS[lang]["offer"]
    call.press("1")

    assert WORDS[lang]["saved"] in call.said() and WORDS[lang]["goodbye"] in call.said()
    assert call.root.xpath("./Hangup")
    (card,) = saved_cards(app)
    (payment,) = payments(app)
    assert (card.stripe_customer, card.stripe_payment_method) == (sandbox_customer("pm_card_visa"), "pm_card_visa")
    assert (card.card_brand, card.card_last4) == ("visa", "4242")
    # The consent: the very words the caller heard, in their language, on this call, after this payment.
    assert card.consent_words == offer
    assert (card.consent_language, card.consent_channel) == (lang, "ivr")
    assert (card.consent_call_sid, card.consent_payment_id) == (call.call_sid, payment.id)


@pytest.mark.parametrize("answer", ["2", None])
def test_a_2_or_no_answer_keeps_nothing(app, client, make_account, answer):
    make_account()
    call = card_choice(client, "en")
    call.pay("pm_card_visa")
    call.silence()
    assert "To save this card for next time, press 1." in call.said()

    call.press(answer) if answer else call.silence()

    assert call.root.xpath("./Hangup") and "Goodbye." in call.said()
    assert saved_cards(app) == []


def test_a_wrong_key_is_explained_and_saves_nothing(app, client, make_account):
    make_account()
    call = card_choice(client, "en")
    call.pay("pm_card_visa")
    call.silence()

    call.press("5")

    assert call.said().startswith("Sorry, that isn't a choice. We can keep this card on file")
    assert saved_cards(app) == []


def test_no_offer_when_stripe_gave_no_customer_to_keep_the_card_on(app, client, make_account):
    make_account()
    call = card_choice(client, "en")
    call.pay("pm_card_visa", ProfileId="")  # a connector without reusable tokens
    call.silence()

    assert call.root.xpath("./Hangup") and "save this card" not in call.said()
    assert saved_cards(app) == []


def test_a_keyed_card_replaces_the_card_on_file_only_when_the_member_agrees(app, client, make_account, stripe_api):
    make_account()
    keep_card(app, "pm_card_chargeCustomerFail", "0341")
    call = card_choice(client, "en")
    call.press("2")  # another card
    call.pay("pm_card_mastercard")
    call.silence()
    assert "instead of your Visa ending in 0 3 4 1. To save this card for next time, press 1." in call.said()

    call.press("1")

    (card,) = saved_cards(app)
    assert (card.card_brand, card.card_last4, card.stripe_payment_method) == ("mastercard", "4444", "pm_card_mastercard")
    assert stripe_api.detached == ["pm_card_chargeCustomerFail"]  # the replaced card, at Stripe


# --- paying with it -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_the_card_on_file_pays_off_session_without_pay_with_receipt_and_posting_row(app, client, make_account,
                                                                                     stripe_api, lang):
    make_account()
    keep_card(app)
    call = card_choice(client, lang)
    assert call.said() == WORDS[lang]["choice"].format(card=WORDS[lang]["visa"], last4=spaced("4242"))
    assert call.root.xpath("./Pay") == []

    call.press("1")

    said = call.said()
    assert WORDS[lang]["approved"] in said and call.root.xpath("./Pay") == []
    sent = intent_form(stripe_api)
    assert (sent["payment_method"], sent["customer"]) == ("pm_card_visa", sandbox_customer("pm_card_visa"))
    assert (sent["off_session"], sent["confirm"], sent["amount"]) == ("true", "true", "12345")
    assert sent["metadata[saved_card]"] == "yes"
    (payment,) = payments(app)
    assert payment.status == "succeeded" and payment.attempt_key.startswith(f"saved:{call.call_sid}:")
    assert payment.confirmation_number in said.replace(" ", "")
    assert stripe_api.requests[-1].headers["Idempotency-Key"] == payment.attempt_key
    assert balance(app) == 0
    assert receipts(app) == [payment.id]
    assert posted(app) == [(payment.id, 12345)]

    call.silence()  # paid with a saved card: nothing to offer to save
    assert call.root.xpath("./Hangup") and WORDS[lang]["goodbye"] in call.said()


def test_another_amount_also_hears_the_card_on_file_with_that_amount(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = at_summary(client, "en")
    call.press("2")
    call.press("50*25")
    call.press("1")

    assert call.said().startswith("To pay fifty dollars and twenty-five cents with your Visa ending in 4 2 4 2")
    call.press("1")
    assert "Approved: fifty dollars and twenty-five cents." in call.said()
    assert intent_form(stripe_api)["amount"] == "5025"


def test_2_takes_another_card_on_the_keypad(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")

    call.press("2")

    assert call.root.xpath("./Pay") and stripe_api.requests == []


@pytest.mark.parametrize("lang", LANGS)
def test_0341_pays_on_the_keypad_then_is_declined_as_the_card_on_file_and_the_keypad_is_offered(
        app, client, make_account, stripe_api, lang):
    make_account(balance_cents=24690)
    first = at_summary(client, lang)
    first.press("2")
    first.press("123*45")
    first.press("1")
    first.pay("pm_card_chargeCustomerFail")  # 4000000000000341: attaches and pays
    first.silence()
    first.press("1")  # save it
    assert saved_cards(app)[0].card_last4 == "0341"

    second = card_choice(client, lang)
    assert WORDS[lang]["choice"].format(card=WORDS[lang]["visa"], last4=spaced("0341")) in second.said()
    second.press("1")

    said = second.said()
    assert said.startswith(WORDS[lang]["declined"].format(last4=spaced("0341")))
    assert WORDS[lang]["keypad"] in said and second.root.xpath("./Pay") == []
    declined = payments(app)[-1]
    assert (declined.status, declined.decline_code) == ("declined", "card_declined")
    assert balance(app) == 24690 - 12345  # the first call's payment only

    second.press("1")
    assert second.root.xpath("./Pay")  # the keypad
    second.pay("pm_card_visa")
    assert WORDS[lang]["approved"] in second.said()
    assert balance(app) == 0
    assert len(stripe_api.successful_charges) == 2


@pytest.mark.parametrize("lang", LANGS)
def test_3155_needs_authentication_which_is_said_plainly_and_the_keypad_is_offered(app, client, make_account,
                                                                                    stripe_api, lang):
    make_account()
    keep_card(app, "pm_card_authenticationRequired", "3155")  # 4000002500003155
    call = card_choice(client, lang)

    call.press("1")

    said = call.said()
    assert said.startswith(WORDS[lang]["bank"]) and WORDS[lang]["keypad"] in said
    assert intent_form(stripe_api)["off_session"] == "true"
    (payment,) = payments(app)
    assert (payment.status, payment.decline_code) == ("declined", "authentication_required")
    assert balance(app) == 12345 and receipts(app) == []
    call.press("1")
    assert call.root.xpath("./Pay")


def test_after_a_declined_card_on_file_the_keypad_card_comes_next_not_the_same_card(app, client, make_account):
    make_account()
    keep_card(app, "pm_card_chargeCustomerFail", "0341")
    call = card_choice(client, "en")
    call.press("1")  # declined
    call.press("1")  # the keypad
    assert call.root.xpath("./Pay")

    call.pay(result="caller-interrupted-with-star")  # back to the menu, then the full balance again
    call.press("1")

    assert call.root.xpath("./Pay")  # the card that failed on this call is not offered again


def test_the_card_on_file_is_charged_once_when_twilio_delivers_the_1_twice(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    url = call.gather_action()

    call.press("1")
    first = call.said()
    call.post(url, call.params(Digits="1"))

    assert call.said() == first
    assert len(stripe_api.intents) == 1
    assert len(payments(app)) == 1 and len(receipts(app)) == 1 and balance(app) == 0


def test_a_1_delivered_again_while_the_first_is_at_stripe_waits_and_charges_once(app, client, make_account,
                                                                                  stripe_api, monkeypatch):
    """The first delivery is still at Stripe when the second arrives: Stripe says 409 (key in use) to
    the second, which asks again until the first's answer is there, and says the same."""
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    url = call.gather_action()
    monkeypatch.setattr(voice, "IN_PROGRESS_POLL_SECONDS", 0.1)
    release = threading.Event()
    stripe_api.hold = release
    answers = {}

    def deliver(name):
        twin = CallActions(app.test_client(), call_sid=call.call_sid)
        twin.post(url, twin.params(Digits="1"))
        answers[name] = twin.said()

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    while not stripe_api.in_flight:  # the first delivery is waiting at Stripe
        time.sleep(0.01)
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    while len(stripe_api.requests) < 1:  # ... and the second has been told "in use"
        time.sleep(0.01)
    release.set()
    first.join(20)
    second.join(20)

    assert "Approved:" in answers["first"] and answers["first"] == answers["second"]
    assert len(stripe_api.successful_charges) == 1
    assert len({r.headers["Idempotency-Key"] for r in stripe_api.requests}) == 1
    assert len(payments(app)) == 1 and len(receipts(app)) == 1 and len(posted(app)) == 1
    assert balance(app) == 0


def test_a_card_forgotten_elsewhere_after_it_was_offered_is_not_charged(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    with app.app_context():
        db.session.execute(sa.delete(SavedCard))  # an agent forgot it meanwhile
        db.session.commit()

    call.press("1")

    assert call.said().startswith(WORDS["en"]["forgotten"]) and WORDS["en"]["keypad"] in call.said()
    assert stripe_api.requests == [] and payments(app) == []


def test_a_forged_1_gets_403_and_charges_nothing(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")

    response = call.post(call.gather_action(), call.params(Digits="1"), signature="forged")

    assert response.status_code == 403
    assert stripe_api.requests == [] and payments(app) == []


# --- forgetting it --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_9_forgets_the_card_and_detaches_it_at_stripe_then_offers_the_keypad(app, client, make_account,
                                                                              stripe_api, lang):
    make_account()
    keep_card(app)
    call = card_choice(client, lang)

    call.press("9")

    said = call.said()
    assert said.startswith(WORDS[lang]["forgotten"]) and WORDS[lang]["keypad"] in said
    assert saved_cards(app) == []
    assert stripe_api.detached == ["pm_card_visa"]
    assert payments(app) == []
    call.press("1")
    assert call.root.xpath("./Pay")

    later = card_choice(client, lang)  # the next call goes straight to the keypad
    assert later.root.xpath("./Pay")


def test_9_delivered_twice_detaches_once(app, client, make_account, stripe_api):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    url = call.gather_action()

    call.press("9")
    first = call.said()
    call.post(url, call.params(Digits="9"))

    assert call.said() == first and stripe_api.detached == ["pm_card_visa"]


def test_the_calls_path_shows_the_card_on_file_for_ops(app, client, make_account):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    call.press("1")

    with app.app_context():
        row = db.session.scalar(sa.select(CallSession).where(CallSession.call_sid == call.call_sid))
    assert row.path[-2:] == ["SAVED_CARD", "CONFIRMATION"] and row.furthest == "paid"


def test_no_card_data_reaches_the_logs_of_a_saved_card_call(app, client, make_account, caplog):
    make_account()
    keep_card(app)
    call = card_choice(client, "en")
    call.press("1")

    text = caplog.text
    assert "12345001" not in text and "+12025550143" not in text
    assert not re.search(r"pm_card_visa|cus_sandbox", text)


def test_keying_the_very_card_on_file_asks_nothing_more(app, client, make_account):
    make_account()
    keep_card(app)  # pm_card_visa on its customer
    call = card_choice(client, "en")
    call.press("2")  # another card... which is the same PaymentMethod at Stripe
    call.pay("pm_card_visa")
    call.silence()

    assert call.root.xpath("./Hangup") and "save this card" not in call.said()
    assert len(saved_cards(app)) == 1


def test_the_save_key_delivered_twice_saves_once_and_answers_the_same(app, client, make_account, stripe_api):
    make_account()
    call = card_choice(client, "en")
    call.pay("pm_card_visa")
    call.silence()
    url = call.gather_action()

    call.press("1")
    first = call.said()
    call.post(url, call.params(Digits="1"))

    assert call.said() == first and len(saved_cards(app)) == 1 and stripe_api.detached == []


@pytest.fixture
def with_fee(app_config):
    app_config["CONVENIENCE_FEE_CENTS"] = 250


def test_an_accepted_convenience_fee_is_charged_to_the_card_on_file_with_the_amount(with_fee, app, client,
                                                                                    make_account, stripe_api):
    make_account()
    keep_card(app)
    call = at_summary(client, "en")
    call.press("1")
    assert "a fee of two dollars and fifty cents" in call.said()
    call.press("1")  # accept the fee

    assert call.said().startswith("To pay one hundred twenty-five dollars and ninety-five cents with your Visa")
    call.press("1")

    assert "plus the fee of two dollars and fifty cents. Confirmation number" in call.said()
    assert intent_form(stripe_api)["amount"] == "12595"
    (payment,) = payments(app)
    assert (payment.amount_cents, payment.fee_cents) == (12345, 250) and balance(app) == 0
