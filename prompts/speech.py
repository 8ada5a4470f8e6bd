"""Numbers, money, dates and digit strings written out the way a person says them, per language."""

from datetime import date
from functools import lru_cache

from num2words import num2words

LANGUAGES = ("en", "es")

_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
}
_WEEKDAYS = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
}


# num2words is pure but slow for a webhook (a tenth of a millisecond per amount): callers hear
# the same few thousand numbers and dates over and over.
@lru_cache(maxsize=8192)
def number(n: int, lang: str) -> str:
    """A cardinal number in words: 123 -> "one hundred twenty-three" / "ciento veintitrés"."""
    words = num2words(n, lang=lang)
    if lang == "en":
        # American usage: "one hundred twenty-three", not the British "one hundred and twenty-three".
        words = words.replace(" and ", " ").replace(",", "")
    return words


def _count_noun(n: int, lang: str, one: str, many: str) -> str:
    words = number(n, lang)
    if lang == "es":
        # Before a masculine noun Spanish drops the final -o: "un dólar", "veintiún dólares".
        if words.endswith("veintiuno"):
            words = words[: -len("veintiuno")] + "veintiún"
        elif words == "uno" or words.endswith(" uno"):
            words = words[:-1]
        # "un millón de dólares": a round million takes "de".
        if words.endswith(("millón", "millones")):
            words += " de"
    return f"{words} {one if n == 1 else many}"


def money(cents: int, lang: str) -> str:
    """Dollars and cents in words: 12345 -> "one hundred twenty-three dollars and forty-five cents"."""
    cents = abs(cents)
    dollars, rest = divmod(cents, 100)
    nouns = {"en": ("dollar", "dollars", "cent", "cents", "and"),
             "es": ("dólar", "dólares", "centavo", "centavos", "con")}[lang]
    parts = []
    if dollars or not rest:
        parts.append(_count_noun(dollars, lang, nouns[0], nouns[1]))
    if rest:
        parts.append(_count_noun(rest, lang, nouns[2], nouns[3]))
    return f" {nouns[4]} ".join(parts)


@lru_cache(maxsize=1024)
def day(d: date, lang: str) -> str:
    """A due date as said aloud: "Friday, December fifth" / "el viernes cinco de diciembre"."""
    weekday = _WEEKDAYS[lang].split()[d.weekday()]
    month = _MONTHS[lang].split()[d.month - 1]
    if lang == "es":
        dom = "primero" if d.day == 1 else number(d.day, "es")
        return f"el {weekday} {dom} de {month}"
    return f"{weekday}, {month} {num2words(d.day, lang='en', to='ordinal')}"


def digits(text: str) -> str:
    """Digits spaced out so text-to-speech reads them one by one: "4827" -> "4 8 2 7"."""
    return " ".join(ch for ch in text if ch.isdigit())
