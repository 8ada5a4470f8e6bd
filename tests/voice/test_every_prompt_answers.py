"""Every step that waits for a key answers ``*``, ``0``, silence and a wrong key with words, in both
languages, through the real webhooks: never a hang-up without a word, never a 500."""

import uuid

import pytest
import sqlalchemy as sa
from helpers import BASE, CallActions

from flows import FLOW, Keys, State
from ivr.extensions import db
from ivr.models import Account, CallSession

AGENT = "+12025550100"
AMOUNT = {"amount_cents": 5000, "fee_cents": 0}
PAID = {"paid_cents": 5000, "paid_fee_cents": 0, "confirmation_number": "48213375", "payment_id": 1}
CARD = {"on_file_brand": "visa", "on_file_last4": "4242"}
LATER = {**AMOUNT, "pay_on": "2026-12-04"}  # a payment being scheduled for the day before the bill's due date

# Each waiting step, with the call data it is reached with, whether the call is identified by
# then, and a key that is not one of its answers.
STEPS = {
    State.WELCOME: ({}, False, None),  # any key or none goes on: there is no wrong key
    State.OFFER_CALLER_ID: ({"candidate": "12345001"}, False, "7"),
    State.CHOOSE_ACCOUNT: ({"choices": ["12345001", "12345002"]}, False, "7"),
    State.ENTER_ACCOUNT: ({}, False, "12"),
    State.ENTER_LAST4: ({"candidate": "12345001"}, False, "12"),
    State.ENTER_ZIP: ({"candidate": "12345001"}, False, "12"),
    State.ENTER_FULL_ACCOUNT: ({"candidate": "12345001"}, False, "12"),
    State.SUMMARY: ({}, True, "7"),
    State.HISTORY: ({}, True, "7"),
    State.ENTER_AMOUNT: ({}, True, "5**"),
    State.CONFIRM_AMOUNT: (AMOUNT, True, "7"),
    State.FEE_CONFIRM: ({**AMOUNT, "fee_offered_cents": 250}, True, "7"),
    State.SAVED_CARD: ({**AMOUNT, **CARD}, True, "7"),
    State.SAVED_CARD_DECLINED: ({**AMOUNT, **CARD, "decline_code": "card_declined", "saved_card_failed": True}, True, "7"),
    State.CARD_FORGOTTEN: (AMOUNT, True, "7"),
    State.CARD_DECLINED: ({**AMOUNT, "decline_code": "insufficient_funds", "pay_attempts": 1}, True, "7"),
    State.CARD_UNREADABLE: ({**AMOUNT, "pay_attempts": 1}, True, "7"),
    State.PROCESSOR_DOWN: ({**AMOUNT, "pay_attempts": 1}, True, "7"),
    State.CONFIRMATION: ({**AMOUNT, **PAID}, True, "7"),
    State.SAVE_CARD_OFFER: ({**AMOUNT, **PAID}, True, "7"),
    State.CALLBACK_WELCOME: ({}, True, "7"),
    State.LATER_MENU: ({}, True, "7"),
    State.SCHEDULE_AMOUNT: ({}, True, "7"),
    State.SCHEDULE_ENTER_AMOUNT: ({}, True, "5**"),
    State.SCHEDULE_DATE: (AMOUNT, True, "12"),
    State.SCHEDULE_CONFIRM: (LATER, True, "7"),
    State.SCHEDULE_CARD_PROBLEM: (LATER, True, "7"),
    State.SCHEDULED_DONE: ({**LATER, "scheduled_cancellable": True}, True, "7"),
    State.SCHEDULED_LIST: ({}, True, "7"),
    State.AUTOPAY_STOP: ({}, True, "7"),
}


def test_the_list_covers_every_step_that_waits_for_a_key():
    waiting = {state for state, step in FLOW.items() if isinstance(step.expect, Keys)}
    # TRANSFER_CONFIRM needs an agent's transfer row (tests/agents covers its keys); SCHEDULED_CANCEL a
    # scheduled payment's row and AUTOPAY_TERMS a card on file (tests/later covers their keys, and
    # tests/flows/test_speech.py their answers to noise and doubtful speech).
    assert waiting - set(STEPS) == {State.TRANSFER_CONFIRM, State.SCHEDULED_CANCEL, State.AUTOPAY_TERMS}


@pytest.fixture
def agent_config(app_config, request):
    app_config["AGENT_TRANSFER_NUMBER"] = AGENT if request.param else None
    return request.param


def _call_in(app, client, state, lang, data, identified):
    """A call row waiting in ``state`` (as the flow would have left it) and a caller on it."""
    call = CallActions(client, call_sid="CA" + uuid.uuid4().hex)
    with app.app_context():
        account_id = db.session.scalar(sa.select(Account.id).where(Account.account_number == "12345001"))
        db.session.add(CallSession(
            call_sid=call.call_sid, from_number=call.from_, to_number=call.to, state=state.value, language=lang,
            account_id=account_id if identified else None, seq=1,
            data={"language": lang, "identified": identified, **data},
        ))
        db.session.commit()
    return call


def _state(app, call):
    with app.app_context():
        return db.session.scalar(sa.select(CallSession.state).where(CallSession.call_sid == call.call_sid))


def _answer(call, digits):
    """Key ``digits`` (None: let the Gather time out) into the step waiting at seq 1."""
    params = call.params(Digits=digits) if digits is not None else call.params()
    return call.post(f"{BASE}/twilio/voice/step?seq=1", params)


def _words(call):
    assert call.last_status == 200
    said = " ".join(" ".join(say.itertext()) for say in call.root.xpath("//Say")).split()
    assert said, "an answer without a word"
    return said


@pytest.mark.parametrize("agent_config", [True, False], indirect=True, ids=["agent", "no-agent"])
@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_waiting_step_answers_star_zero_silence_and_a_wrong_key(agent_config, lang, app, client, make_account):
    make_account(balance_cents=12345, past_due_cents=0)
    make_account(account_number="12345002", balance_cents=5000)
    say_language = {"en": "en-US", "es": "es-US"}[lang]
    for state, (data, identified, wrong) in STEPS.items():
        step = FLOW[state]

        star = _call_in(app, client, state, lang, data, identified)
        _answer(star, "*")
        _words(star)
        assert _state(app, star) == state.value, f"{state}: * moved the call"
        assert star.root.xpath("./Gather"), f"{state}: * did not ask again"
        if state != State.WELCOME:  # the greeting says each language in its own voice
            assert set(star.root.xpath("//Say/@language")) == {say_language}, state

        zero = _call_in(app, client, state, lang, data, identified)
        _answer(zero, "0")
        _words(zero)
        if agent_config and step.allow_agent:
            assert zero.root.xpath("./Dial/Number/text()") == [AGENT], f"{state}: 0 did not reach the agent"
        else:
            assert not zero.root.xpath("./Dial"), state
            assert zero.root.xpath("./Gather") or state == State.WELCOME, f"{state}: 0 ended the call"

        silent = _call_in(app, client, state, lang, data, identified)
        _answer(silent, None)
        _words(silent)
        if step.on_silence is None:  # else silence has a way on of its own (after a payment: goodbye)
            assert silent.root.xpath("./Gather"), f"{state}: one silence ended the call"
            assert _state(app, silent) == state.value, f"{state}: a silence moved the call"

        if wrong is not None:
            mistaken = _call_in(app, client, state, lang, data, identified)
            _answer(mistaken, wrong)
            _words(mistaken)
            assert _state(app, mistaken) == state.value, f"{state}: a wrong key moved the call"
            assert mistaken.root.xpath("./Gather"), f"{state}: a wrong key ended the call"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_after_one_silence_every_wait_for_a_key_is_longer_for_the_rest_of_the_call(app, client, make_account, lang):
    make_account()
    call = _call_in(app, client, State.OFFER_CALLER_ID, lang, {"candidate": "12345001"}, False)
    _answer(call, "1")
    (first_wait,) = call.root.xpath("./Gather/@timeout")
    call.silence()
    (after_silence,) = call.root.xpath("./Gather/@timeout")
    assert int(after_silence) > int(first_wait)
    call.press("20005")  # the service ZIP code: on to the balance
    assert _state(app, call) == State.SUMMARY.value
    (summary_wait,) = call.root.xpath("./Gather/@timeout")
    assert int(summary_wait) > FLOW[State.SUMMARY].expect.timeout


@pytest.mark.parametrize("setting", ["1", ""])
def test_longer_key_waits_give_every_call_more_time_from_its_first_prompt(app_config, request, setting):
    """LONGER_KEY_WAITS (a line for relay-service callers): no time-out needed to get the longer wait."""
    from ivr.config import load_config

    app_config["LONGER_KEY_WAITS"] = load_config({"LONGER_KEY_WAITS": setting})["LONGER_KEY_WAITS"]
    app, client = request.getfixturevalue("app"), request.getfixturevalue("client")
    request.getfixturevalue("make_account")()
    call = _call_in(app, client, State.OFFER_CALLER_ID, "en", {"candidate": "12345001"}, False)
    _answer(call, "1")
    (first_wait,) = call.root.xpath("./Gather/@timeout")
    normal = FLOW[State.ENTER_ZIP].expect.timeout
    assert int(first_wait) == (normal * 2 if setting else normal)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_reprompt_is_shorter_than_the_first_prompt(app, client, make_account, lang):
    make_account()
    call = _call_in(app, client, State.ENTER_LAST4, lang, {"candidate": "12345001"}, False)
    _answer(call, "0143")
    first = _words(call)
    call.silence()
    again = _words(call)
    assert len(again) < len(first)
    call.press("7")
    assert len(_words(call)) < len(first)


@pytest.fixture
def matthew(app_config):
    app_config["TTS_VOICES"] = {"en": "Polly.Matthew-Neural"}


@pytest.mark.usefixtures("matthew")
def test_digits_are_ssml_digits_a_break_follows_the_news_and_the_voice_setting_is_used(app, client, make_account):
    make_account()
    call = _call_in(app, client, State.CONFIRMATION, "en", {**AMOUNT, **PAID}, True)
    _answer(call, "1")  # hear it again
    (say,) = call.root.xpath("./Gather/Say")
    assert say.get("voice") == "Polly.Matthew-Neural" and say.get("language") == "en-US"
    assert say.xpath("./say-as[@interpret-as='digits']/text()") == ["48213375"]
    assert say.xpath("./break/@time") == ["300ms"]
    assert "8 2 1 3 3 7 5" in call.said()

    spanish = _call_in(app, client, State.CONFIRMATION, "es", {**AMOUNT, **PAID}, True)
    _answer(spanish, "1")
    assert spanish.root.xpath("./Gather/Say/@voice") == ["Polly.Lupe-Neural"]  # the catalogue's default
