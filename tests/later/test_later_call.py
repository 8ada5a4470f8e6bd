"""Paying later by phone: key 5, scheduling with its date rules and read-back, hearing and cancelling, autopay."""

import sqlalchemy as sa
from helpers import ZIP, CallActions
from later_fixtures import (  # noqa: F401
    DUE,
    MEMBER,
    NOW,
    account_id,
    clock,
    enrollments,
    reach_later_menu,
    save_card,
    saved_card,
    scheduled,
)

from ivr.extensions import db
from ivr.later.models import CALL_CARD, SAVED_CARD, ScheduledPayment


def test_the_summary_offers_key_5_and_it_lists_what_this_account_can_do(app, client, clock, saved_card):
    call = CallActions(client, from_=MEMBER)
    call.start()
    call.silence()
    call.press("1")
    call.press(ZIP)
    assert "Pay later or autopay, 5." in call.said()

    call.press("5")

    assert call.said() == (
        "To schedule a payment, press 1. "
        "To set up autopay with your Visa ending in 4 2 4 2, press 3. "
        "To go back, press 9."
    )


def schedule_keys(call, amount_key="1", day="1207"):
    """From the paying-later menu: schedule, pick the amount, key the day."""
    call.press("1")
    call.press(amount_key)
    return call.press(day)


def test_scheduling_with_the_card_on_file_reads_it_back_and_keeps_it_once(app, client, clock, saved_card):
    call = reach_later_menu(client)
    call.press("1")
    assert call.said() == (
        "To schedule your balance of one hundred twenty-three dollars and forty-five cents, press 1. "
        "To schedule the past-due amount of twenty-three dollars and forty-five cents, press 2. "
        "To schedule a different amount, press 3."
    )
    call.press("2")
    assert call.said() == (
        "Enter the day to pay as four digits: the month, then the day. For your due date, Thursday, December "
        "tenth, you would press 1 2 1 0. Any day from today up to the due date will do."
    )
    call.press("1207")
    assert call.said() == (
        "You are scheduling a payment of twenty-three dollars and forty-five cents on Monday, December seventh, "
        "with your Visa ending in 4 2 4 2. To confirm, press 1. To choose another day, press 2. To cancel, press 9."
    )
    confirm_url = call.gather_action()
    call.press("1")
    assert call.said() == (
        "Your payment of twenty-three dollars and forty-five cents is scheduled for Monday, December seventh. "
        "We'll send you a text receipt that day. You can cancel it by phone until 24 hours before. "
        "To go back to the menu, press 1. To end the call, press 9."
    )
    first_answer = call.said()
    call.post(confirm_url, call.params(Digits="1"))  # Twilio delivers the same keypress again
    assert call.said() == first_answer

    (row,) = scheduled(app)
    assert (row.amount_cents, row.pay_on.isoformat(), row.status) == (2345, "2026-12-07", "scheduled")
    assert row.card_source == SAVED_CARD
    assert (row.card_brand, row.card_last4, row.stripe_payment_method) == ("visa", "4242", None)
    # Charged at 9:00 in New York on the day: 14:00 UTC.
    assert row.charge_at.isoformat() == "2026-12-07T14:00:00+00:00"
    assert (row.created_call_sid, row.language) == (call.call_sid, "en")


def test_the_day_must_be_a_real_day_from_today_to_the_due_date(app, client, clock, saved_card):
    answers = {}
    for keyed in ("1130", "1211", "1340", "12#5", "0231"):
        call = reach_later_menu(client)
        schedule_keys(call, day=keyed)
        answers[keyed] = call.said().split(" Enter the day")[0]
        assert call.said().endswith("Any day from today up to the due date will do.")  # asked again

    assert answers == {
        "1130": "That day has already passed.",
        "1211": "That day is after the due date, Thursday, December tenth.",
        "1340": "Sorry, that isn't a date.",
        "12#5": "Please enter four digits: two for the month and two for the day.",
        "0231": "Sorry, that isn't a date.",
    }
    assert scheduled(app) == []


def test_today_and_the_due_date_itself_may_be_chosen_and_the_soonest_cannot_be_cancelled(app, client, clock, saved_card):
    call = reach_later_menu(client)
    schedule_keys(call, day="1201")
    assert "on Tuesday, December first" in call.said()
    call.press("1")
    assert "It is less than 24 hours away, so it can no longer be cancelled." in call.said()

    call = reach_later_menu(client)
    schedule_keys(call, day="1210")
    call.press("1")
    assert [r.pay_on.isoformat() for r in scheduled(app)] == ["2026-12-01", "2026-12-10"]


def test_a_bill_due_next_january_takes_a_january_day_keyed_in_december(app, client, clock, make_account):
    from datetime import date

    account = make_account(due_date=date(2027, 1, 8), past_due_cents=0)
    save_card(app, account)
    call = reach_later_menu(client)
    schedule_keys(call, day="0105")
    assert "on Tuesday, January fifth" in call.said()
    call.press("1")
    assert [r.pay_on.isoformat() for r in scheduled(app)] == ["2027-01-05"]


def test_another_amount_is_keyed_as_on_the_pay_menu_and_limited_to_the_balance(app, client, clock, saved_card):
    call = reach_later_menu(client)
    call.press("1")
    call.press("3")
    call.press("200*00")
    assert call.said().startswith("The amount must be from one dollar to one hundred twenty-three dollars")
    call.press("50*25")
    call.press("1209")
    assert call.said().startswith(
        "You are scheduling a payment of fifty dollars and twenty-five cents on Wednesday, December ninth")


def test_cancel_at_the_read_back_schedules_nothing(app, client, clock, saved_card):
    call = reach_later_menu(client)
    schedule_keys(call)
    call.press("9")
    assert call.said().startswith("Nothing was scheduled. To schedule a payment, press 1.")
    assert scheduled(app) == []


def test_spanish_callers_hear_the_read_back_in_spanish(app, client, clock, saved_card):
    call = reach_later_menu(client, spanish=True)
    assert call.said() == (
        "Para programar un pago, oprima 1. "
        "Para inscribirse en el pago automático con su tarjeta Visa que termina en 4 2 4 2, oprima 3. "
        "Para regresar, oprima 9."
    )
    schedule_keys(call, amount_key="1", day="1207")
    assert call.said() == (
        "Va a programar un pago de ciento veintitrés dólares con cuarenta y cinco centavos para el lunes siete de "
        "diciembre, con su tarjeta Visa que termina en 4 2 4 2. Para confirmar, oprima 1. Para elegir otro día, oprima 2. "
        "Para cancelar, oprima 9."
    )
    call.press("1")
    assert call.said().startswith(
        "Su pago de ciento veintitrés dólares con cuarenta y cinco centavos está programado para el lunes siete de "
        "diciembre. Ese día le enviaremos un recibo por mensaje de texto. Puede cancelarlo por teléfono hasta 24 horas antes."
    )
    (row,) = scheduled(app)
    assert row.language == "es"


def test_scheduled_payments_are_heard_and_one_is_cancelled_until_24_hours_before(app, client, clock, saved_card):
    for day in ("1207", "1202"):
        call = reach_later_menu(client)
        schedule_keys(call, day=day)
        call.press("1")
    # Now is 15:00 UTC on the 1st: the 2nd's charge (9:00 in New York, 14:00 UTC) is less than 24 hours away.
    call = reach_later_menu(client)
    assert call.said().startswith("You have two scheduled payments.")
    call.press("2")
    assert call.said() == (
        "one hundred twenty-three dollars and forty-five cents on Wednesday, December second. It is less than 24 "
        "hours away and can no longer be cancelled. "
        "one hundred twenty-three dollars and forty-five cents on Monday, December seventh. To cancel it, press two. "
        "To go back, press 9."
    )
    call.press("1")
    assert call.said().startswith("Sorry, that payment is less than 24 hours away and can no longer be cancelled.")
    call.press("2")
    assert call.said() == (
        "To cancel the payment of one hundred twenty-three dollars and forty-five cents on Monday, December seventh, "
        "press 1. To keep it, press 2."
    )
    call.press("1")
    assert call.said().startswith(
        "The payment of one hundred twenty-three dollars and forty-five cents on Monday, December seventh is "
        "cancelled. Nothing will be charged for it. You have one scheduled payment."
    )
    statuses = {r.pay_on.day: (r.status, r.cancelled_by) for r in scheduled(app)}
    assert statuses == {2: ("scheduled", None), 7: ("cancelled", "member")}


def test_a_payment_cancelled_elsewhere_meanwhile_is_said_to_be_gone(app, client, clock, saved_card):
    call = reach_later_menu(client)
    schedule_keys(call)
    call.press("1")
    call = reach_later_menu(client)
    call.press("2")
    call.press("1")
    with app.app_context():
        db.session.execute(sa.update(ScheduledPayment).values(status="cancelled"))
        db.session.commit()
    call.press("1")
    assert call.said().startswith("That payment is no longer scheduled.")


def test_without_a_card_on_file_the_card_is_tokenized_for_that_day_and_not_charged(app, client, clock, account_id, stripe_api):
    call = reach_later_menu(client)
    assert "Autopay needs a card saved on file. You can save one after you pay by phone." in call.said()
    schedule_keys(call, day="1208")
    assert call.said() == (
        "You are scheduling a payment of one hundred twenty-three dollars and forty-five cents on Tuesday, December "
        "eighth. Next we'll ask for the card to charge that day. To confirm, press 1. To choose another day, press 2. "
        "To cancel, press 9."
    )
    call.press("1")
    pay = call.root.xpath("./Pay")[0]
    assert pay.get("chargeAmount") is None and pay.get("tokenType") == "payment-method"
    assert call.said().startswith("Please enter the card to charge on Tuesday, December eighth. It will not be charged today.")

    call.pay("pm_card_mastercard", ProfileId="cus_from_connector")

    assert call.said().startswith("Your payment of one hundred twenty-three dollars and forty-five cents is scheduled for "
                                  "Tuesday, December eighth.")
    assert stripe_api.requests == []  # nothing charged today
    (row,) = scheduled(app)
    assert (row.card_source, row.stripe_customer) == (CALL_CARD, "cus_from_connector")
    assert row.stripe_payment_method == "pm_card_mastercard"
    assert (row.card_brand, row.card_last4) == ("mastercard", "4444")


def test_a_card_without_a_stripe_customer_cannot_be_kept_and_nothing_is_scheduled(app, client, clock, account_id):
    call = reach_later_menu(client)
    schedule_keys(call)
    call.press("1")
    call.pay("pm_card_visa", ProfileId="")  # a connector that reports no customer
    assert call.said() == (
        "Sorry, we couldn't keep that card for a later payment. Nothing was scheduled or charged. "
        "To try again or use another card, press 1. To go back, press 9."
    )
    call.press("1")
    assert call.root.xpath("./Pay")
    assert scheduled(app) == []


def test_autopay_is_turned_on_with_the_terms_heard_kept_as_the_consent(app, client, clock, saved_card):
    call = reach_later_menu(client)
    call.press("3")
    terms = call.said()
    assert terms == (
        "With autopay, we charge your Visa ending in 4 2 4 2 for each new bill's balance on its due date. "
        "Two days before, we text you the amount. The first charge will be for the bill due Thursday, December "
        "tenth. You can stop autopay at any time by calling us and pressing 5 after you hear your balance. "
        "To agree and turn on autopay, press 1. To go back, press 9."
    )
    call.press("1")
    assert call.said().startswith(
        "Thank you. You are now enrolled in autopay. Autopay is on for this account, with your Visa ending in 4 2 4 2."
    )
    assert "To stop autopay, press 3." in call.said()
    (enrollment,) = enrollments(app)
    assert (enrollment.active, enrollment.consent_words, enrollment.consent_call_sid) == (True, terms, call.call_sid)
    assert (enrollment.consent_language, enrollment.enrolled_at) == ("en", NOW)


def test_autopay_is_stopped_by_phone(app, client, clock, saved_card):
    call = reach_later_menu(client, spanish=True)
    call.press("3")
    assert "El primer cobro será por la factura que vence el jueves diez de diciembre." in call.said()
    call.press("1")
    call.press("3")
    assert call.said() == "Para suspender el pago automático, oprima 1. Para conservarlo, oprima 2."
    call.press("1")
    assert call.said().startswith("El pago automático está suspendido. No se cobrará ninguna factura automáticamente.")
    (enrollment,) = enrollments(app)
    assert (enrollment.active, enrollment.cancelled_by, enrollment.consent_language) == (False, "member", "es")


def test_autopay_cannot_be_chosen_without_a_card_on_file(app, client, clock, account_id):
    call = reach_later_menu(client)
    call.press("3")
    assert call.said().startswith("Sorry, that isn't a choice.")
    assert enrollments(app) == []


def test_nine_goes_back_to_the_balance(app, client, clock, saved_card):
    call = reach_later_menu(client)
    call.press("9")
    assert call.said().startswith("Your balance is one hundred twenty-three dollars and forty-five cents, due Thursday")
