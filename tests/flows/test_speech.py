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
