"""Words to keys (flows/speech.py), in English and Spanish, with no I/O."""

import pytest

from flows.speech import YES_NO, Heard, hear, hints

SUMMARY = {"pay": "1", "balance": "1", "other": "2", "history": "3"}


@pytest.mark.parametrize(
    ("words", "lang", "keys"),
    [
        ("pay", "en", "1"),
        ("I'd like to pay the balance", "en", "1"),
        ("payment history", "en", "3"),
        ("a different amount", "en", "2"),
        ("press three", "en", "3"),
        ("pagar", "es", "1"),
        ("quiero pagar otra cantidad", "es", "2"),
        ("dos", "es", "2"),
        ("historial", "es", "3"),
        ("agent", "en", "0"),
        ("representative", "en", "0"),
        ("un representante", "es", "0"),
        ("repeat that", "en", "*"),
    ],
)
def test_menu_words_map_to_the_menus_keys(words, lang, keys):
    assert hear(words, "menu", SUMMARY, lang) == Heard(keys, sure=True)


@pytest.mark.parametrize(("words", "lang", "keys"), [("yes", "en", "1"), ("no", "en", "2"), ("sí", "es", "1"),
                                                     ("si", "es", "1"), ("no", "es", "2"), ("that's right", "en", "1")])
def test_yes_and_no_in_both_languages(words, lang, keys):
    assert hear(words, "menu", YES_NO, lang).keys == keys


@pytest.mark.parametrize("words", ["Spanish", "español", "en español"])
def test_spanish_is_understood_at_the_greeting(words):
    assert hear(words, "menu", {"english": "1", "spanish": "2"}, "en").keys == "2"


@pytest.mark.parametrize(
    ("words", "lang", "keys"),
    [
        ("four two four two", "en", "4242"),
        ("oh one four three", "en", "0143"),
        ("one two three four five zero zero one", "en", "12345001"),
        ("my account number is 12345001", "en", "12345001"),
        ("cuatro dos cuatro dos", "es", "4242"),
        ("uno dos tres cuatro cinco cero cero uno", "es", "12345001"),
        ("dos cero cero cero cinco", "es", "20005"),
    ],
)
def test_numbers_said_digit_by_digit(words, lang, keys):
    assert hear(words, "digits", {}, lang) == Heard(keys, sure=True)


@pytest.mark.parametrize(
    ("words", "lang", "keys"),
    [
        ("fifty dollars and twenty-five cents", "en", "50*25"),
        ("$50.25", "en", "50*25"),
        ("fifty dollars", "en", "50"),
        ("one thousand forty-eight dollars and seventy-five cents", "en", "1048*75"),
        ("$1,048.75", "en", "1048*75"),
        ("cincuenta dólares con veinticinco centavos", "es", "50*25"),
        ("cien dólares", "es", "100"),
        ("mil cuarenta y ocho dólares con setenta y cinco centavos", "es", "1048*75"),
    ],
)
def test_amounts_said_aloud_become_keyed_amounts(words, lang, keys):
    assert hear(words, "amount", {}, lang) == Heard(keys, sure=True)


def test_an_amount_that_could_be_read_two_ways_is_not_sure():
    assert hear("fifty twenty-five", "amount", {}, "en") == Heard("50*25", sure=False)


@pytest.mark.parametrize(("words", "kind"), [("the weather is nice", "amount"), ("banana", "digits"),
                                              ("what", "menu"), ("history or a different amount", "menu"), ("", "menu")])
def test_noise_does_not_parse(words, kind):
    assert hear(words, kind, SUMMARY, "en") is None


def test_hints_name_the_steps_words_in_the_calls_language_and_a_class_for_numbers():
    assert "pay" in hints("menu", SUMMARY, "en") and "agent" in hints("menu", SUMMARY, "en")
    assert "pagar" in hints("menu", SUMMARY, "es") and "pay" not in hints("menu", SUMMARY, "es").split(", ")
    assert hints("digits", {}, "en").startswith("$OOV_CLASS_DIGIT_SEQUENCE")


# --- every step of the table -------------------------------------------------------------------

from datetime import date  # noqa: E402

from test_flow_table import FakeContext  # noqa: E402

from flows import FLOW, Keys, State  # noqa: E402
from flows.engine import CONFIRM_HEARD, KeyPress, Silence, Speech, advance  # noqa: E402
from flows.speech import INTENT_WORDS  # noqa: E402
from flows.steps import AccountView, CardOnFile  # noqa: E402

KEY_STEPS = [state for state, step in FLOW.items() if isinstance(step.expect, Keys)]


def _ctx(**data):
    # What the paying-later steps read: a day and an amount chosen, a card on file for autopay.
    later = {"pay_on": "2026-12-04", "amount_cents": 5000}
    ctx = FakeContext(data={"candidate": "12345001", "choices": ["12345001", "12345002"], **later, **data}, agent=True)
    ctx.identified = AccountView("12345001", 5000, 0, date(2026, 12, 5), "en", "active")
    ctx.card = CardOnFile("visa", "4242")
    return ctx


def test_every_word_a_step_accepts_is_a_meaning_in_both_languages_and_one_of_its_keys():
    for state in KEY_STEPS:
        words = FLOW[state].expect.words
        words = words(_ctx()) if callable(words) else words
        for meaning, key in words.items():
            assert all(meaning in INTENT_WORDS[lang] for lang in INTENT_WORDS), (state, meaning)
            assert len(key) == 1 and key in "0123456789*#", (state, meaning)


@pytest.mark.parametrize("state", KEY_STEPS)
def test_every_prompt_answers_noise_with_a_clear_reprompt(state):
    turn = advance(state, Speech("purple elephants", confident=True), _ctx())
    assert turn.state == state and turn.say[0].key == "not_understood" and turn.updates["invalid"] == 1


@pytest.mark.parametrize("state", KEY_STEPS)
def test_every_prompt_reads_doubtful_speech_back_and_decides_nothing_until_yes(state):
    ctx = _ctx()
    turn = advance(state, Speech("repeat", confident=False), ctx)
    assert turn.state == state and turn.expect.num_digits == 1 and turn.expect.words == CONFIRM_HEARD.words
    assert [p.key for p in turn.say] == ["heard_choice" if FLOW[state].expect.hear == "menu" else
                                         "heard_amount" if FLOW[state].expect.hear == "amount" else "heard_digits",
                                         "heard_check"]
    assert turn.updates == {"heard_keys": "*"}
    ctx.data.update(turn.updates)
    no = advance(state, KeyPress("2"), ctx)
    assert no.state == state and no.updates == {"heard_keys": None}
    assert "heard_check" not in [p.key for p in no.say] and no.expect == FLOW[state].expect  # the step again
    silence = advance(state, Silence(), ctx)  # silence to a read-back is no "yes" either
    assert silence.state == state and silence.updates == {"heard_keys": None}


@pytest.mark.parametrize("state", [s for s in KEY_STEPS if FLOW[s].allow_agent])
def test_every_prompt_that_offers_the_agent_takes_agent_said(state):
    turn = advance(state, Speech("representative", confident=True), _ctx())
    assert turn.state == State.AGENT
