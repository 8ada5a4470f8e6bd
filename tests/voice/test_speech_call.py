"""Keys or voice: whole calls answered by speech through the real webhooks, in English and Spanish."""

import logging

import pytest
import sqlalchemy as sa
from helpers import CallActions

from ivr.extensions import db
from ivr.models import CallSession, Payment

pytestmark = pytest.mark.usefixtures("stripe_api")

LOW = 0.3  # under the default SPEECH_CONFIDENCE_THRESHOLD (0.6): read back before it counts
READ_BACK = {"en": "If that's right, press 1 or say yes. If not, press 2 or say no.",
             "es": "Si es correcto, oprima 1 o diga sí. Si no, oprima 2 o diga no."}
NOT_UNDERSTOOD = "Sorry, I didn't understand that. You can say it, or use the keypad."


def gather(call):
    (element,) = call.root.xpath("./Gather")
    return element


def payments(app):
    with app.app_context():
        return db.session.scalars(sa.select(Payment)).all()


def at_summary(call, lang="en"):
    """Greeting, caller-ID offer and ZIP code, all said."""
    call.start()
    call.say("español" if lang == "es" else "English")
    call.say({"en": "yes", "es": "sí"}[lang])
    call.say({"en": "two zero zero zero five", "es": "dos cero cero cero cinco"}[lang])
    assert {"en": "Your balance is", "es": "Su saldo es"}[lang] in call.said()
    return call


@pytest.mark.parametrize(("lang", "language"), [("en", "en-US"), ("es", "es-US")])
def test_every_prompt_listens_for_keys_and_speech_in_the_calls_language(client, make_account, lang, language):
    make_account()
    call = at_summary(CallActions(client), lang)
    element = gather(call)
    assert element.get("input") == "dtmf speech" and element.get("language") == language
    assert element.get("speechModel") == "numbers_and_commands" and element.get("speechTimeout") == "auto"
    assert {"en": "pay", "es": "pagar"}[lang] in element.get("hints").split(", ")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_whole_payment_by_voice_until_the_card_which_stays_on_the_keypad(app, client, make_account, lang):
    make_account()
    call = at_summary(CallActions(client), lang)
    call.say({"en": "pay the full balance", "es": "pagar el saldo completo"}[lang])
    (pay,) = call.root.xpath("./Pay")
    assert pay.get("input") == "dtmf" and not call.root.xpath("./Gather")  # no speech for card data
    call.pay("pm_card_visa")
    assert [p.amount_cents for p in payments(app)] == [12345]


@pytest.mark.parametrize(
    ("lang", "amount", "read_back", "yes"),
    [("en", "fifty dollars and twenty-five cents", "fifty dollars and twenty-five cents", "yes"),
     ("es", "cincuenta dólares con veinticinco centavos", "cincuenta dólares con veinticinco centavos", "sí")],
)
def test_an_amount_said_aloud_is_read_back_and_paid(app, client, make_account, lang, amount, read_back, yes):
    make_account()
    call = at_summary(CallActions(client), lang)
    call.say({"en": "a different amount", "es": "otra cantidad"}[lang])
    call.say(amount)
    assert read_back in call.said()  # the amount's own confirmation, as for keys
    call.say(yes)
    call.pay("pm_card_visa")
    assert [p.amount_cents for p in payments(app)] == [5025]


def test_a_misheard_choice_is_read_back_and_a_no_asks_again(app, client, make_account):
    make_account()
    call = at_summary(CallActions(client))
    call.say("pay", confidence=LOW)
    assert call.said() == "I heard option 1. " + READ_BACK["en"]
    assert gather(call).get("numDigits") == "1" and not call.root.xpath("./Pay")
    call.say("no")
    assert "To pay in full, press 1" in call.said()  # the menu again, nothing chosen
    call.say("pay", confidence=LOW)
    call.press("1")  # yes, on the keypad
    assert call.root.xpath("./Pay")


@pytest.mark.parametrize(("lang", "number", "heard"), [
    ("en", "one two three four five zero zero one", "I heard 1 2 3 4 5 0 0 1."),
    ("es", "uno dos tres cuatro cinco cero cero uno", "Entendí 1 2 3 4 5 0 0 1."),
])
def test_an_account_number_heard_with_doubt_is_read_back_before_it_is_used(client, make_account, lang, number, heard):
    make_account()
    call = CallActions(client, from_="anonymous")
    call.start()
    call.say("español" if lang == "es" else "English")
    call.say(number, confidence=LOW)
    assert call.said() == f"{heard} {READ_BACK[lang]}"
    call.say({"en": "yes", "es": "sí"}[lang])
    assert {"en": "last 4 digits of the phone", "es": "últimos 4 dígitos"}[lang] in call.said()
    call.say({"en": "oh one four three", "es": "cero uno cuatro tres"}[lang])
    assert {"en": "Your balance is", "es": "Su saldo es"}[lang] in call.said()


def test_noise_gets_a_clear_reprompt_and_counts_like_a_wrong_key(client, make_account):
    make_account()
    call = at_summary(CallActions(client))
    call.say("a different amount")
    call.say("the weather is lovely today")
    assert call.said().startswith(NOT_UNDERSTOOD + " ")
    assert len(call.said()) > len(NOT_UNDERSTOOD) + 20 and gather(call).get("finishOnKey") == "#"  # the amount asked again
    call.say("what")
    call.say("hmm")
    assert not call.root.xpath("./Gather")  # three answers that were no answer: the call ends politely


def test_a_spoofed_caller_saying_the_phones_last_four_never_hears_the_balance(client, make_account):
    make_account()
    call = CallActions(client)
    call.start()
    call.say("English")
    call.say("yes")
    call.say("oh one four three")
    assert call.said().startswith("Please enter the five digits of the ZIP code.")
    assert "Your balance" not in call.said()


def test_words_posted_while_the_card_is_being_entered_change_nothing(app, client, make_account):
    make_account()
    call = at_summary(CallActions(client))
    call.say("pay")
    pay_twiml = call.root
    step_url = pay_twiml.xpath("./Pay/@action")[0].replace("/twilio/voice/pay", "/twilio/voice/step")
    call.post(step_url, call.params(SpeechResult="four two four two four two four two", Confidence="0.99"))
    assert call.root.xpath("./Pay/@input") == ["dtmf"]  # card entry again, as it was
    assert payments(app) == []


def test_what_a_caller_says_is_neither_logged_nor_kept(app, client, make_account, caplog):
    make_account()
    caplog.set_level(logging.DEBUG)
    call = at_summary(CallActions(client))
    call.say("my card is 4111 1111 1111 1111")
    assert NOT_UNDERSTOOD in call.said()
    with app.app_context():
        kept = str(db.session.scalar(sa.select(CallSession.data)))
    assert "4111" not in caplog.text and "4111" not in kept
