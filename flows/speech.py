"""What a caller says, turned into the keys it stands for: the one place spoken words map to keys.

Pure (no I/O). A ``<Gather input="dtmf speech">`` posts ``SpeechResult``; ``hear`` turns it into
the keys a caller would have pressed at that step (``"1"``, ``"12345001"``, ``"50*25"``) and says
whether every word was understood. The engine acts on keys only: speech that is not understood
is never guessed at, and speech understood with doubt is read back for a yes or a no first.
Numbers said in words are read by ``text2num`` (English and Spanish).
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from text_to_num import alpha2digit

# Meanings a caller may say, and the words that say them, per language. A step's ``Keys.words``
# maps the meanings it accepts to its keys; "agent" (0) and "repeat" (*) work at every step.
# Words are written without accents: what is heard is compared without them too.
INTENT_WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "en": {
        "yes": ("yes", "yeah", "yep", "correct", "right", "that's right", "sure", "okay", "ok"),
        "no": ("no", "nope", "wrong", "incorrect", "not right"),
        "agent": ("agent", "representative", "operator", "a person", "someone", "human"),
        "repeat": ("repeat", "say again", "say that again", "repeat that"),
        "spanish": ("spanish", "espanol"),
        "english": ("english",),
        "pay": ("pay", "make a payment", "pay it", "pay all", "pay in full", "full balance", "whole balance",
                "everything", "all of it"),
        "balance": ("balance", "the balance"),
        "past_due": ("past due", "overdue", "late amount"),
        "other": ("other amount", "different amount", "another amount", "part", "partial", "some of it"),
        "history": ("history", "payments", "last payments", "recent payments", "payment history"),
        "later": ("later", "pay later", "schedule", "schedule a payment", "autopay", "automatic payments"),
        "another_card": ("another card", "different card", "new card", "other card", "try again", "keypad"),
        "saved_card": ("card on file", "saved card", "same card", "that card", "my card"),
        "forget": ("forget", "forget it", "remove", "delete"),
        "another_account": ("another account", "other account", "different account", "next account"),
        "end": ("end", "goodbye", "bye", "hang up", "done", "finish", "that's all", "end the call"),
        "menu": ("menu", "back", "go back", "main menu"),
    },
    "es": {
        "yes": ("si", "claro", "correcto", "de acuerdo", "esta bien", "eso es", "exacto"),
        "no": ("no", "incorrecto", "equivocado", "no es"),
        "agent": ("agente", "representante", "operador", "operadora", "una persona", "alguien"),
        "repeat": ("repetir", "repita", "repitalo", "otra vez"),
        "spanish": ("espanol", "en espanol", "spanish"),
        "english": ("ingles", "en ingles", "english"),
        "pay": ("pagar", "pago", "pagarlo", "pagar todo", "saldo completo", "todo el saldo", "todo"),
        "balance": ("saldo", "el saldo"),
        "past_due": ("vencido", "vencida", "lo vencido", "atrasado", "cantidad vencida"),
        "other": ("otra cantidad", "otra suma", "parcial", "una parte", "otro monto"),
        "history": ("historial", "pagos", "ultimos pagos", "mis pagos"),
        "later": ("despues", "pagar despues", "mas tarde", "programar", "programar un pago", "pago automatico"),
        "another_card": ("otra tarjeta", "tarjeta nueva", "nueva tarjeta", "intentar de nuevo", "teclado"),
        "saved_card": ("tarjeta guardada", "misma tarjeta", "esa tarjeta", "mi tarjeta", "la tarjeta registrada"),
        "forget": ("olvidar", "olvidarla", "borrar", "borrarla", "eliminar"),
        "another_account": ("otra cuenta", "la otra cuenta", "siguiente cuenta"),
        "end": ("terminar", "adios", "colgar", "eso es todo", "nada mas", "ya termine"),
        "menu": ("menu", "volver", "regresar", "menu principal"),
    },
}
GLOBAL_WORDS: Mapping[str, str] = {"agent": "0", "repeat": "*"}
YES_NO: Mapping[str, str] = {"yes": "1", "no": "2"}  # the read-back's answer: 1 confirms, 2 does not

# Words a caller adds around a number ("my account number is …", "fifty dollars please").
_FILLER = frozenset(
    "my the a an is it it's its number account zip code postal dash and please i want to like would pay "
    "paying of um uh er oh well thats that's mi el la es numero de del cuenta codigo guion y por favor "
    "quiero pagar con unos unas este eh pues".split()
)
_DIGIT_WORDS = {"oh": "zero", "o": "zero"}  # "oh one four three": English callers say 0 as "oh"
_DOLLARS = frozenset({"dollar", "dollars", "dolar", "dolares", "bucks"})
_CENTS = frozenset({"cent", "cents", "centavo", "centavos", "centimo", "centimos"})
_AND = frozenset({"and", "y", "con"})


@dataclass(frozen=True)
class Heard:
    """The keys an answer stands for, and whether every word of it was understood."""

    keys: str
    sure: bool


def plain(text: str) -> str:
    """Lower case, no accents, punctuation as spaces (keeps digits, ``$``, ``.``, ``,`` and apostrophes)."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9$.,' ]", " ", text).split())


def _phrases(lang: str | None = None) -> list[tuple[str, str]]:
    """(phrase, intent) of both languages (or one), longest first so "eso es todo" beats "eso es"."""
    langs = [lang] if lang else list(INTENT_WORDS)
    pairs = {(phrase, intent) for code in langs for intent, words in INTENT_WORDS[code].items() for phrase in words}
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def intents(text: str) -> list[str]:
    """The meanings said in ``text`` (either language), each once, in the order found."""
    rest = f" {plain(text)} "
    found: list[str] = []
    for phrase, intent in _phrases():
        if f" {phrase} " in rest:
            rest = rest.replace(f" {phrase} ", " | ")
            if intent not in found:
                found.append(intent)
    return found


def _numerals(text: str, lang: str) -> list[str]:
    """``text``'s words with numbers said in words turned to digits (in ``lang``, then the other)."""
    words = [_DIGIT_WORDS.get(word, word) if lang == "en" else word for word in plain(text).split()]
    spoken = " ".join(words)
    for code in (lang, *(c for c in INTENT_WORDS if c != lang)):
        converted = alpha2digit(spoken, code, threshold=0)
        if converted != spoken:
            return converted.split()
    return words


def _digits(text: str, lang: str) -> Heard | None:
    """A number said digit by digit or in groups ("four two four two", "12 34"), as keyed digits."""
    digits, unknown = "", False
    for token in _numerals(text, lang):
        token = token.strip(".,")
        if token.isascii() and token.isdigit():
            digits += token
        elif token not in _FILLER:
            unknown = True
    return Heard(digits, sure=not unknown) if digits else None


def _amount(text: str, lang: str) -> Heard | None:
    """Dollars and cents said aloud ("fifty dollars and twenty-five cents", "$50.25"), as keyed: ``50*25``."""
    # "centavos" would be read as a fraction ("1/100") by the number reader; "1,048.75" is one number.
    words = ["cents" if word in _CENTS else word for word in plain(text.replace("$", " $ ")).split()]
    spoken = re.sub(r"(?<=[0-9]),(?=[0-9]{3})", "", " ".join(words))
    tokens = [token.strip(",") for token in _numerals(spoken, lang)]
    unknown = any(t not in _FILLER | _DOLLARS | _CENTS | _AND | {"$"} and not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", t)
                  for t in tokens)
    shape = " ".join("N" if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", t) else "D" if t in _DOLLARS else
                     "C" if t in _CENTS else "" for t in tokens).split()
    numbers = [t for t in tokens if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", t)]
    dollars, cents, sure = None, 0, not unknown
    if shape in (["N"], ["N", "D"]):
        whole, _, fraction = numbers[0].partition(".")
        if len(fraction) > 2:
            return None
        dollars, cents = int(whole), int(fraction.ljust(2, "0")) if fraction else 0
    elif shape == ["N", "D", "N", "C"] or shape == ["N", "D", "N"]:
        dollars, cents = int(numbers[0]), int(numbers[1])
    elif shape == ["N", "C"]:
        dollars, cents = 0, int(numbers[0])
    elif shape == ["N", "N"] and len(numbers[1]) == 2 and "." not in numbers[0]:
        dollars, cents, sure = int(numbers[0]), int(numbers[1]), False  # "fifty twenty-five": ask
    if dollars is None or "." in str(dollars) or cents > 99:
        return None
    return Heard(f"{dollars}*{cents:02d}" if cents else str(dollars), sure)


def _menu_key(text: str, words: Mapping[str, str], lang: str) -> Heard | None:
    """The one key a menu answer stands for: a meaning the step accepts, or the key's number said."""
    accepted = {**GLOBAL_WORDS, **words}
    said = [intent for intent in intents(text) if intent in accepted]
    if len(said) > 1 and "pay" in said:  # "pay a different amount": the more specific meaning
        said.remove("pay")
    keys = {accepted[intent] for intent in said}
    numbers = [t for t in _numerals(text, lang) if t.isascii() and t.isdigit()]
    if not keys and len(numbers) == 1 and len(numbers[0]) == 1:  # "two", "press 2", "option two"
        keys.add(numbers[0])  # (only without a meaning: "un representante" is no "1")
    if len(keys) != 1:
        return None  # nothing this step offers, or two different things at once
    return Heard(keys.pop(), sure=True)


def hear(text: str, kind: str, words: Mapping[str, str], lang: str) -> Heard | None:
    """The keys ``text`` stands for at a step expecting ``kind`` ("menu", "digits" or "amount"); None
    when it does not parse. "agent" and "repeat" are understood everywhere."""
    if not plain(text):
        return None
    if kind != "menu":
        said = intents(text)
        if said and all(intent in GLOBAL_WORDS for intent in said) and not _digits(text, lang):
            return Heard(GLOBAL_WORDS[said[0]], sure=True)
    if kind == "digits":
        return _digits(text, lang)
    if kind == "amount":
        return _amount(text, lang)
    return _menu_key(text, words, lang)


def hints(kind: str, words: Mapping[str, str], lang: str) -> str:
    """Twilio's ``hints`` for a step: the phrases it accepts in ``lang``, and a class token for numbers."""
    vocabulary = INTENT_WORDS.get(lang, INTENT_WORDS["en"])
    phrases = [phrase for intent in (*words, *GLOBAL_WORDS) for phrase in vocabulary.get(intent, ())[:3]]
    token = {"digits": "$OOV_CLASS_DIGIT_SEQUENCE", "amount": "$MONEY"}.get(kind)
    return ", ".join(dict.fromkeys([*([token] if token else []), *phrases]))
