"""Words members read in reminders, keyword replies and the link page (``en.toml``/``es.toml``).

Also the GSM-7 arithmetic that tells whether a text fits one SMS segment.
"""

import tomllib
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any

LANGUAGES = ("en", "es")

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + char = two).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")
SEGMENT_GSM7 = 160


def language(lang: str | None) -> str:
    """``lang`` if we have words for it, else English."""
    return lang if lang in LANGUAGES else "en"


@cache
def _load(lang: str) -> dict[str, dict[str, str]]:
    source = files(__package__).joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    return tomllib.loads(source)


def catalog(lang: str) -> dict[str, dict[str, str]]:
    """Every section and key of ``lang`` (for tests and tools)."""
    return {section: dict(keys) for section, keys in _load(language(lang)).items()}


def text(section: str, key: str, lang: str, **params: Any) -> str:
    """The string ``[section] key`` in ``lang`` with ``{name}`` placeholders filled."""
    return _load(language(lang))[section][key].format_map(params)


def gsm7_length(body: str) -> int | None:
    """Septets ``body`` takes in GSM-7, or None when it needs UCS-2 (70 characters a segment)."""
    length = 0
    for char in body:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENDED:
            length += 2
        else:
            return None
    return length


def fits_one_segment(body: str) -> bool:
    """True when ``body`` is GSM-7 and at most 160 septets: one SMS, one charge."""
    length = gsm7_length(body)
    return length is not None and length <= SEGMENT_GSM7


def long_date(value: date, lang: str) -> str:
    """The date in words: "December 5, 2026" / "5 de diciembre de 2026"."""
    months = text("dates", "months", lang).split()
    return text(
        "dates", "long_date", lang, month=months[value.month - 1], day=value.day, year=value.year
    )


def clock_time(value: datetime, lang: str) -> str:
    """The clock time: "3:15 PM" / "15:15" (the local time ``value`` carries)."""
    if text("dates", "time_12h", lang) == "yes":
        hour = value.hour % 12 or 12
        return f"{hour}:{value:%M} {'AM' if value.hour < 12 else 'PM'}"
    return f"{value:%H:%M}"


def moment(value: datetime, lang: str, today: date) -> str:
    """A local time for "try again after …": the time alone today, else date and time."""
    if value.date() == today:
        return clock_time(value, lang)
    return text(
        "dates",
        "day_and_time",
        lang,
        date=long_date(value.date(), lang),
        time=clock_time(value, lang),
    )


def national(e164: str | None) -> str:
    """A +1 number as members write it, "(202) 555-0143"; anything else unchanged."""
    if e164 and e164.startswith("+1") and len(e164) == 12 and e164[1:].isdigit():
        digits = e164[2:]
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return e164 or ""
