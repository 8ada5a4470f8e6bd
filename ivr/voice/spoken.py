"""The flow's prompts as one language says them: parameters in words, then the catalogue's text."""

from collections.abc import Mapping
from typing import Any

import prompts
from flows import Prompt
from flows.steps import Day, Digits, Money, Word
from prompts import speech


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
        elif isinstance(value, Word):
            out[name] = prompts.text(value, lang)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[name] = speech.number(value, lang)
        else:
            out[name] = str(value)
    return out


def say(prompt: Prompt, lang: str, org: str) -> tuple[str, str]:
    """The language and words of one prompt (a prompt may force its own language)."""
    language = prompt.lang or lang
    return language, prompts.text(prompt.key, language, org=org, **spoken_params(prompt.params, language))
