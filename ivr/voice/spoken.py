"""The flow's prompts as one language says them: parameters in words, then the catalogue's text."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import prompts
from flows import Prompt
from flows.steps import Day, Digits, Money, Word
from prompts import speech

# Marks where a digit string goes in a prompt's text, so the renderer can wrap it in SSML.
_MARK = "\x00"


@dataclass(frozen=True)
class DigitRun:
    """A digit string to be read one digit at a time (SSML ``<say-as interpret-as="digits">``)."""

    digits: str


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


def say_parts(prompt: Prompt, lang: str, org: str) -> tuple[str, list[str | DigitRun]]:
    """Like ``say``, with each digit string apart (a ``DigitRun``) so it can be marked up for the voice."""
    language = prompt.lang or lang
    params = spoken_params(prompt.params, language)
    for name, value in prompt.params.items():
        if isinstance(value, Digits):
            params[name] = f"{_MARK}{''.join(ch for ch in value if ch.isdigit())}{_MARK}"
    text = prompts.text(prompt.key, language, org=org, **params)
    # Split on the marks: odd pieces are the digit strings.
    parts: list[str | DigitRun] = []
    for index, piece in enumerate(text.split(_MARK)):
        if index % 2:
            parts.append(DigitRun(piece))
        elif piece:
            parts.append(piece)
    return language, parts
