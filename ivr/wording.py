"""Turn the flow's prompts into the words of one language, for the ear (voice) or the eye (SMS)."""

from collections.abc import Mapping
from datetime import date
from typing import Any

import prompts
from flows import Prompt
from flows.steps import Day, Digits, Money
from prompts import speech

_SHORT_MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
}


def spoken_params(params: Mapping[str, Any], lang: str) -> dict[str, str]:
    """Parameters as a listener should hear them: amounts, dates and numbers in words."""
    out: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, Money):
            out[name] = speech.money(int(value), lang)
        elif isinstance(value, Day):
            out[name] = speech.day(value.value, lang)
        elif isinstance(value, Digits):
            out[name] = speech.digits(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[name] = speech.number(value, lang)
        else:
            out[name] = str(value)
    return out


def say(prompt: Prompt, lang: str, org: str) -> tuple[str, str]:
    """The language and words of one prompt (a prompt may force its own language)."""
    language = prompt.lang or lang
    return language, prompts.text(prompt.key, language, org=org, **spoken_params(prompt.params, language))


def short_datetime(value: Any, lang: str) -> str:
    """A local date and time for a text message: "Dec 5, 2026 3:07 PM" / "5 dic 2026 15:07"."""
    months = _SHORT_MONTHS[lang].split()
    month = months[value.month - 1]
    if lang == "es":
        return f"{value.day} {month} {value.year} {value:%H:%M}"
    hour = value.hour % 12 or 12
    return f"{month} {value.day}, {value.year} {hour}:{value:%M} {'AM' if value.hour < 12 else 'PM'}"


def short_date(value: date, lang: str) -> str:
    """A date for a text message: "Dec 5" / "5 dic"."""
    months = _SHORT_MONTHS[lang].split()
    return f"{months[value.month - 1]} {value.day}" if lang == "en" else f"{value.day} {months[value.month - 1]}"
