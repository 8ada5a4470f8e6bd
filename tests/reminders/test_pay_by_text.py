"""Pay by text: PAY with a saved card gets an offer naming amount and card, YES pays it once, or says why not.

Stripe is faked at the HTTP level (``responses``), so the real Stripe gateway sends the off-session
PaymentIntent with Stripe's documented test cards: ``4000000000000341`` (saved after paying on the
keypad, then every charge fails) and ``4000002500003155`` (the bank wants authentication).
"""

# Fixtures are imported from reminder_fixtures, so their names reappear as arguments.
# ruff: noqa: F811

import csv
import io
import threading
import time
from datetime import date
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers import send_event
from reminder_fixtures import MEMBER, ORG, clock, fake_twilio, text_in  # noqa: F401

from ivr.cli import main
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money import saved_cards
from ivr.money.charge import charge_token
from ivr.money.models import SavedCard
from ivr.outbox.models import OutboxMessage
from ivr.reminders import pay_by_text
from ivr.reminders.models import Callback, TextPayOffer

OTHER_MEMBER = "+13035550188"  # on file for another account
STRANGER = "+13125550199"  # on file for nobody
PAY_LINE = "(202) 555-0100"

OFFER_EN = f"{ORG}: Reply YES within 10 minutes to pay $123.45 with your Visa ending in 4242 for account ending 5001."
OFFER_ES = (f"{ORG}: Responda SI en 10 minutos para pagar $123.45 con su tarjeta Visa que termina en 4242, "
            "cuenta que termina en 5001.")
APPROVED_EN = f"{ORG}: thank you, your payment went through. Your receipt follows."
APPROVED_ES = f"{ORG}: gracias, su pago fue aprobado. Enseguida le enviamos el recibo."
NO_OFFER_EN = f"{ORG}: no payment is waiting for your reply, so nothing was charged. To pay by text, reply PAY."
NO_OFFER_ES = (f"{ORG}: no hay ningun pago esperando su respuesta, asi que no se cobro nada. "
               "Para pagar por mensaje, responda PAGAR.")


@pytest.fixture
def app_config(app_config):
    """Our number is the pay line members are told to call."""
    app_config["TWILIO_FROM_NUMBER"] = "+12025550100"
    return app_config


def save_card(app, account_id, payment_method="pm_card_visa", last4="4242", brand="visa"):
    """A card on file for the account, as the keypad flow keeps it after an approved payment."""
    with app.app_context():
        db.session.add(SavedCard(account_id=account_id, stripe_customer="cus_member", stripe_payment_method=payment_method,
                                 card_brand=brand, card_last4=last4, consent_channel="ivr",
                                 consent_words="To save this card for next time, press 1."))
        db.session.commit()


@pytest.fixture
def member(app, make_account, clock, stripe_api):
    """Pat, account 12345001 owing $123.45, with a Visa ending in 4242 on file."""
    account_id = make_account()
    save_card(app, account_id)
    return account_id


def rows(app, model, *where):
    with app.app_context():
        return list(db.session.scalars(sa.select(model).where(*where).order_by(model.id)))


def balance(app, account_id):
    with app.app_context():
        return db.session.get(Account, account_id).balance_cents


def charge_requests(stripe_api):
    return [parse_qs(r.body if isinstance(r.body, str) else r.body.decode()) for r in stripe_api.requests]


# --- the offer --------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "word", "expected"), [
    ("en", "PAY", OFFER_EN),
    ("en", "pagar", OFFER_ES),
    ("es", "PAY", OFFER_ES),
])
def test_pay_with_a_saved_card_offers_the_balance_with_the_card_and_places_no_call(
    app, client, make_account, clock, stripe_api, fake_twilio, language, word, expected
):
    account_id = make_account(language=language)
    save_card(app, account_id)

    assert text_in(client, word) == (200, [expected])

    assert fake_twilio.created_calls == [] and rows(app, Callback) == []
    (offer,) = rows(app, TextPayOffer)
    assert (offer.account_id, offer.amount_cents, offer.due_date, offer.status) == (account_id, 12345, date(2026, 12, 5),
                                                                                    "offered")
    assert (offer.from_number, offer.card_last4, offer.language) == (MEMBER, "4242", "es" if expected == OFFER_ES else "en")
    assert offer.expires_at - offer.created_at == pay_by_text.OFFER_LIFETIME
    assert stripe_api.requests == [] and balance(app, account_id) == 12345


def test_without_a_saved_card_pay_still_gets_the_callback(app, client, make_account, clock, fake_twilio):
    make_account()
    assert text_in(client, "PAY")[1] == [f"{ORG}: we are calling you now about account ending 5001. Please answer."]
    assert len(fake_twilio.created_calls) == 1 and rows(app, TextPayOffer) == []


def test_several_accounts_on_one_number_pick_the_one_named_and_offer_only_its_card(app, client, make_account, clock,
                                                                                    stripe_api):
    make_account(account_number="11115001")
    second = make_account(account_number="22227002", balance_cents=8417)
    save_card(app, second, payment_method="pm_card_mastercard", last4="4444", brand="mastercard")

    assert text_in(client, "PAY")[1] == [f"{ORG}: which account? Reply PAY 5001 or PAY 7002."]
    assert text_in(client, "PAY 7002")[1] == [
        f"{ORG}: Reply YES within 10 minutes to pay $84.17 with your Mastercard ending in 4444 for account ending 7002."
    ]
    assert text_in(client, "YES")[1] == [APPROVED_EN]
    (payment,) = rows(app, Payment)
    assert (payment.account_id, payment.amount_cents, payment.channel) == (second, 8417, "sms")


@pytest.mark.parametrize(("word", "expected"), [
    ("HELP", (f"{ORG} pay by phone. Call {PAY_LINE} to pay or for help. Reply PAY to pay with your card on file, "
             "BAL for your balance, STOP to opt out.")),
    ("hello", f"{ORG}: reply PAY to pay with your card on file, BAL for your balance, HELP for help, STOP to opt out."),
    ("hola?", (f"{ORG}: responda PAGAR para pagar con su tarjeta guardada, SALDO para su saldo, AYUDA para ayuda, "
              "STOP para no recibir avisos.")),
])
def test_help_and_the_menu_say_pay_uses_the_card_on_file(app, client, make_account, clock, word, expected):
    account_id = make_account(language="es" if word == "hola?" else "en")
    save_card(app, account_id)
    assert text_in(client, word)[1] == [expected]


# --- YES pays once ----------------------------------------------------------------------------


@pytest.mark.parametrize(("offer_word", "yes", "approved", "receipt_start"), [
    ("PAY", "YES", APPROVED_EN, f"{ORG}: payment of $123.45 received for account ending 5001"),
    ("PAY", "yes!", APPROVED_EN, f"{ORG}: payment of $123.45 received for account ending 5001"),
    ("PAGAR", "SI", APPROVED_ES, f"{ORG}: recibimos su pago de $123.45 para la cuenta que termina en 5001"),
    ("PAGAR", "sí", APPROVED_ES, f"{ORG}: recibimos su pago de $123.45 para la cuenta que termina en 5001"),
    # YES answers in the offer's language; SI always in Spanish.
    ("PAGAR", "YES", APPROVED_ES, f"{ORG}: recibimos su pago de $123.45 para la cuenta que termina en 5001"),
    ("PAY", "Si", APPROVED_ES, f"{ORG}: recibimos su pago de $123.45 para la cuenta que termina en 5001"),
])
def test_yes_charges_the_saved_card_once_off_session_and_queues_one_receipt(
    app, client, member, stripe_api, offer_word, yes, approved, receipt_start
):
    text_in(client, offer_word)

    assert text_in(client, yes) == (200, [approved])

    (offer,) = rows(app, TextPayOffer)
    (payment,) = rows(app, Payment)
    assert (payment.status, payment.channel, payment.amount_cents) == ("succeeded", "sms", 12345)
    assert (offer.status, offer.payment_id) == ("paid", payment.id)
    assert balance(app, member) == 0
    (sent,) = charge_requests(stripe_api)
    assert stripe_api.requests[0].headers["Idempotency-Key"] == f"sms:{offer.id}" == payment.attempt_key
    assert sent["off_session"] == ["true"] and sent["confirm"] == ["true"]
    assert (sent["customer"], sent["payment_method"], sent["amount"]) == (["cus_member"], ["pm_card_visa"], ["12345"])
    assert sent["metadata[channel]"] == ["sms"]
    (receipt,) = rows(app, OutboxMessage, OutboxMessage.kind == "receipt")
    assert receipt.payment_id == payment.id and receipt.to_number == MEMBER
    assert receipt.body.startswith(receipt_start) and payment.confirmation_number in receipt.body
    # The answer to YES does not repeat the receipt: one text says it went through, one is the receipt.
    assert payment.confirmation_number not in approved and "$" not in approved


def test_a_second_yes_charges_nothing_and_names_the_payment(app, client, member, stripe_api):
    text_in(client, "PAY")
    text_in(client, "YES")
    (payment,) = rows(app, Payment)

    for word, expected in (
        ("YES", (f"{ORG}: that payment was already made (confirmation {payment.confirmation_number}). "
                "Nothing more was charged.")),
        ("SI", f"{ORG}: ese pago ya se hizo (confirmacion {payment.confirmation_number}). No se cobro nada mas."),
    ):
        assert text_in(client, word)[1] == [expected]

    assert len(stripe_api.requests) == 1 and len(rows(app, Payment)) == 1
    assert len(rows(app, OutboxMessage, OutboxMessage.kind == "receipt")) == 1


def test_yes_after_ten_minutes_is_too_late(app, client, member, clock, stripe_api):
    text_in(client, "PAY")
    clock.advance(minutes=10)

    assert text_in(client, "SI")[1] == [
        f"{ORG}: la oferta vencio a los 10 minutos y no se cobro nada. Responda PAGAR para recibir otra."
    ]
    assert text_in(client, "YES")[1] == [
        f"{ORG}: that offer expired after 10 minutes and nothing was charged. Reply PAY for a new one."
    ]
    assert stripe_api.requests == [] and balance(app, member) == 12345
    assert [o.status for o in rows(app, TextPayOffer)] == ["expired"]


def test_yes_just_before_the_ten_minutes_are_up_still_pays(app, client, member, clock, stripe_api):
    text_in(client, "PAY")
    clock.advance(minutes=9, seconds=59)
    assert text_in(client, "YES")[1] == [APPROVED_EN]
    assert len(stripe_api.successful_charges) == 1


def test_a_new_pay_replaces_the_offer_before_it(app, client, member, clock, stripe_api):
    text_in(client, "PAY")
    clock.advance(minutes=8)
    text_in(client, "PAY")
    clock.advance(minutes=8)  # the first offer has expired, the second has not

    assert text_in(client, "YES")[1] == [APPROVED_EN]
    first, second = rows(app, TextPayOffer)
    assert (first.status, second.status) == ("replaced", "paid")
    assert stripe_api.requests[0].headers["Idempotency-Key"] == f"sms:{second.id}"


def test_yes_from_another_number_charges_nothing(app, client, member, make_account, stripe_api):
    make_account(account_number="99998888", phone=OTHER_MEMBER)
    text_in(client, "PAY")

    assert text_in(client, "YES", from_=OTHER_MEMBER)[1] == [NO_OFFER_EN]
    assert text_in(client, "SI", from_=STRANGER)[1] == [
        f"{ORG}: este numero no esta registrado con nosotros. Llame al {PAY_LINE} para ayuda."
    ]
    assert stripe_api.requests == []
    # The member's own YES still finds the offer, untouched by the others.
    assert text_in(client, "YES")[1] == [APPROVED_EN]


@pytest.mark.parametrize(("word", "expected"), [("YES", NO_OFFER_EN), ("Sí", NO_OFFER_ES)])
def test_yes_with_no_offer_says_so(app, client, member, stripe_api, word, expected):
    assert text_in(client, word)[1] == [expected]
    assert stripe_api.requests == []


def test_yes_from_an_opted_out_number_with_no_offer_is_twilios_opt_in_as_before(app, client, member, stripe_api):
    text_in(client, "STOP")
    assert text_in(client, "YES") == (200, [])
    assert text_in(client, "YES")[1] == [NO_OFFER_EN]  # now opted in: an ordinary YES


def test_yes_inside_a_sentence_is_not_a_confirmation(app, client, member, stripe_api):
    text_in(client, "PAGAR")
    _, (reply,) = text_in(client, "si no pago hoy que pasa")
    assert stripe_api.requests == [] and "PAGAR" in reply and [o.status for o in rows(app, TextPayOffer)] == ["offered"]


# --- the balance or the card changed since the offer -------------------------------------------


def keypad_payment(app, account_id, cents):
    """A payment by phone while the offer waits."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        charge_token(account, cents, "CA-phone:4", "pm_card_visa", channel="ivr", call_sid="CA-phone",
                     language="en", caller=MEMBER)
        db.session.commit()


def test_a_balance_paid_by_phone_meanwhile_is_not_charged_again(app, client, member, stripe_api):
    text_in(client, "PAY")
    keypad_payment(app, member, 12345)

    assert text_in(client, "YES")[1] == [f"{ORG}: nothing is due on account ending 5001."]
    assert len(stripe_api.requests) == 1 and balance(app, member) == 0  # the phone payment only


@pytest.mark.parametrize(("word", "expected"), [
    ("YES", f"{ORG}: your balance changed since our text, so nothing was charged. Reply PAY for a new offer."),
    ("SI", (f"{ORG}: su saldo cambio desde nuestro mensaje, asi que no se cobro nada. "
           "Responda PAGAR para recibir otra oferta.")),
])
def test_a_balance_that_changed_since_the_offer_is_not_charged(app, client, member, stripe_api, word, expected):
    text_in(client, "PAY")
    keypad_payment(app, member, 2345)

    assert text_in(client, word)[1] == [expected]
    assert len(stripe_api.requests) == 1 and balance(app, member) == 10000

    # A new PAY offers what is owed now.
    assert "$100.00" in text_in(client, "PAY")[1][0]
    assert text_in(client, "YES")[1] == [APPROVED_EN]
    assert balance(app, member) == 0


def test_a_card_forgotten_since_the_offer_is_not_charged(app, client, member, stripe_api):
    text_in(client, "PAY")
    with app.app_context():
        saved_cards.forget(db.session.get(Account, member), by="member")

    assert text_in(client, "YES")[1] == [
        f"{ORG}: your card on file changed since our text, so nothing was charged. Reply PAY for a new offer."
    ]
    assert stripe_api.requests == [] and balance(app, member) == 12345
    assert rows(app, TextPayOffer)[0].saved_card_id is None  # the offer outlives the card it named


def test_one_text_payment_per_bill(app, client, member, stripe_api, database_url):
    text_in(client, "PAY")
    text_in(client, "YES")
    (payment,) = rows(app, Payment)
    with app.app_context():  # the billing system adds a late charge to the same bill
        db.session.execute(sa.update(Account).where(Account.id == member).values(balance_cents=1500))
        db.session.commit()

    assert text_in(client, "PAY")[1] == [
        (f"{ORG}: this bill was already paid by text (confirmation {payment.confirmation_number}). "
        f"To pay more, call {PAY_LINE}.")
    ]
    assert len(rows(app, TextPayOffer)) == 1 and len(stripe_api.requests) == 1


def test_the_database_refuses_a_second_paid_offer_for_one_bill(app, member):
    with app.app_context():
        def paid_offer():
            return TextPayOffer(account_id=member, due_date=date(2026, 12, 5), amount_cents=100,
                                stripe_payment_method="pm_card_visa", from_number=MEMBER, status="paid",
                                expires_at=pay_by_text.clock.now())

        db.session.add(paid_offer())
        db.session.commit()
        db.session.add(paid_offer())
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()


# --- declines -------------------------------------------------------------------------------


@pytest.mark.parametrize(("payment_method", "last4", "word", "expected"), [
    ("pm_card_chargeCustomerFail", "0341", "YES",
     f"{ORG}: your Visa ending in 0341 was declined and nothing was charged. To pay with another card, call {PAY_LINE}."),
    ("pm_card_chargeCustomerFail", "0341", "SI",
     (f"{ORG}: su tarjeta Visa que termina en 0341 fue rechazada y no se cobro nada. Para pagar con otra tarjeta, llame al "
     f"{PAY_LINE}.")),
    ("pm_card_authenticationRequired", "3155", "YES",
     (f"{ORG}: your bank wants to confirm this payment with you, which can't be done by text. Nothing was charged. "
     f"To pay with another card, call {PAY_LINE}.")),
    ("pm_card_authenticationRequired", "3155", "SI",
     (f"{ORG}: su banco quiere confirmar este pago con usted y eso no se puede hacer por mensaje. No se cobro nada. "
     f"Para pagar con otra tarjeta, llame al {PAY_LINE}.")),
])
def test_stripes_off_session_test_cards_are_declined_plainly(
    app, client, make_account, clock, stripe_api, payment_method, last4, word, expected
):
    account_id = make_account()
    save_card(app, account_id, payment_method=payment_method, last4=last4)
    text_in(client, "PAY")

    assert text_in(client, word)[1] == [expected]
    assert text_in(client, word)[1] == [expected]  # asked again: the same answer, no second charge

    (payment,) = rows(app, Payment)
    assert (payment.status, payment.channel) == ("declined", "sms")
    assert len(stripe_api.requests) == 1 and stripe_api.successful_charges == []
    assert balance(app, account_id) == 12345 and rows(app, OutboxMessage) == []
    assert [o.status for o in rows(app, TextPayOffer)] == ["declined"]


def test_stripe_unreachable_keeps_the_bill_and_yes_again_finishes_with_the_same_key(app, client, member, stripe_api):
    text_in(client, "PAY")
    stripe_api.fail_next = 1

    assert text_in(client, "YES")[1] == [
        (f"{ORG}: we couldn't reach the card processor just now. Reply YES again in a few minutes, or call {PAY_LINE}. "
        "You will not be charged twice.")
    ]
    (offer,) = rows(app, TextPayOffer)
    assert offer.status == "charging"
    # PAY again makes no second offer for the bill: the open charge is finished by YES.
    assert text_in(client, "PAY")[1][0].startswith(f"{ORG}: we couldn't reach the card processor just now.")
    assert len(rows(app, TextPayOffer)) == 1
    stripe_api.saved.clear()  # Stripe saved nothing for a request it never began (a network failure)

    assert text_in(client, "YES")[1] == [APPROVED_EN]
    keys = {r.headers["Idempotency-Key"] for r in stripe_api.requests}
    assert keys == {f"sms:{offer.id}"} and len(stripe_api.successful_charges) == 1
    assert balance(app, member) == 0


def test_a_charge_whose_process_died_is_finished_by_a_later_yes_with_the_same_key(app, client, member, clock,
                                                                                 stripe_api, monkeypatch):
    text_in(client, "PAY")
    gateway = app.extensions["ivr.gateway"]
    real_charge = gateway.charge

    def die(**kwargs):
        raise SystemError("the process died after the attempt was committed, before Stripe was asked")

    monkeypatch.setattr(gateway, "charge", die)
    # The error handler answers with an apology and the co-op's number, never a 500 or silence.
    assert text_in(client, "YES") == (200, [
        f"{ORG}: sorry, we can't answer texts right now. Please try again in a few minutes, or call (202) 555-0100.\n"
        f"{ORG}: lo sentimos, no podemos responder mensajes en este momento. "
        "Intente de nuevo en unos minutos o llame al (202) 555-0100."
    ])
    monkeypatch.setattr(gateway, "charge", real_charge)
    (offer,) = rows(app, TextPayOffer)
    assert offer.status == "charging" and rows(app, Payment)[0].status == "pending"

    # Within a minute another process may still be charging it: nothing is done twice.
    clock.advance(seconds=30)
    assert text_in(client, "YES")[1] == [
        f"{ORG}: your payment is being processed. Your receipt will follow; you will not be charged twice."
    ]
    assert stripe_api.requests == []
    clock.advance(seconds=31)
    assert text_in(client, "YES")[1] == [APPROVED_EN]
    assert [r.headers["Idempotency-Key"] for r in stripe_api.requests] == [f"sms:{offer.id}"]
    assert len(rows(app, Payment)) == 1 and balance(app, member) == 0


def test_a_charge_stripe_settles_by_webhook_is_not_charged_again(app, client, member, stripe_api):
    text_in(client, "PAY")
    stripe_api.fail_next = 1
    text_in(client, "YES")  # Stripe unreachable; in fact the charge went through
    (payment,) = rows(app, Payment)
    send_event(client, "payment_intent.succeeded", {
        "id": "pi_paid_meanwhile", "object": "payment_intent", "status": "succeeded", "amount": 12345,
        "amount_received": 12345, "metadata": {"payment_id": str(payment.id)},
        "latest_charge": {"payment_method_details": {"card": {"brand": "visa", "last4": "4242"}}},
    })
    (payment,) = rows(app, Payment)
    assert payment.status == "succeeded"

    assert text_in(client, "YES")[1] == [
        f"{ORG}: that payment was already made (confirmation {payment.confirmation_number}). Nothing more was charged."
    ]
    assert len(stripe_api.requests) == 1 and balance(app, member) == 0
    assert [o.status for o in rows(app, TextPayOffer)] == ["paid"]


# --- two deliveries at once ---------------------------------------------------------------------


def test_two_yes_deliveries_at_once_charge_once(app, member, stripe_api, monkeypatch):
    with app.test_client() as client:
        text_in(client, "PAY")
    both_read_the_offer = threading.Barrier(2, timeout=10)
    real_claim = pay_by_text._claim

    def claim_together(offer, now):
        both_read_the_offer.wait()  # both deliveries have checked the offer; now both try to take it
        return real_claim(offer, now)

    gateway = app.extensions["ivr.gateway"]
    real_charge = gateway.charge

    def slow_charge(**kwargs):
        time.sleep(0.5)  # the winner is still charging when the loser looks
        return real_charge(**kwargs)

    monkeypatch.setattr(pay_by_text, "_claim", claim_together)
    monkeypatch.setattr(gateway, "charge", slow_charge)
    answers = []

    def deliver():
        with app.test_client() as client:
            answers.append(text_in(client, "YES")[1])

    deliveries = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in deliveries:
        thread.start()
    for thread in deliveries:
        thread.join(timeout=30)

    assert sorted(answers) == sorted([
        [APPROVED_EN],
        [f"{ORG}: your payment is being processed. Your receipt will follow; you will not be charged twice."],
    ])
    assert len(stripe_api.requests) == 1 and len(rows(app, Payment)) == 1
    assert len(rows(app, OutboxMessage, OutboxMessage.kind == "receipt")) == 1
    assert balance(app, member) == 0


# --- where the payment shows ------------------------------------------------------------------


def test_the_posting_file_carries_the_text_payment_as_channel_sms(app, client, member, stripe_api, database_url):
    text_in(client, "PAY")
    text_in(client, "YES")
    (payment,) = rows(app, Payment)

    result = CliRunner().invoke(main, ["payments", "export"], env={"DATABASE_URL": database_url})

    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["confirmation_number"], row["amount"], row["channel"], row["type"], row["card_last4"]) == (
        payment.confirmation_number, "123.45", "sms", "payment", "4242")


def test_logs_mask_the_number_and_the_account(app, client, member, stripe_api, caplog):
    caplog.set_level("DEBUG")
    text_in(client, "PAY")
    text_in(client, "YES")
    assert MEMBER not in caplog.text and "12345001" not in caplog.text
