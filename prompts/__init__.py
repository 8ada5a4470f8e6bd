"""Every spoken and written word, one TOML catalogue per language with identical keys.

A key names a text in a section: ``"sms.help"``, ``"page.title"``, ``"dates.long_date"``. Voice
prompts, the flow's own keys, are the ``[prompts]`` section and go without one: ``"welcome"``.
Only formatting lives here: which words to say is decided by ``flows`` and the web layer.
"""

import string
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from . import speech

LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_LANGUAGE = "en"
# The section whose keys go unqualified; [voice] holds Twilio settings, not words.
PROMPTS_SECTION = "prompts"
SETTINGS_SECTION = "voice"

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "catalog",
    "language",
    "placeholders",
    "speech",
    "text",
    "voice",
]


@cache
def _load(lang: str) -> dict[str, Any]:
    if lang not in LANGUAGES:
        raise KeyError(f"no prompts for language {lang!r}")
    return tomllib.loads(files(__package__).joinpath(f"{lang}.toml").read_text(encoding="utf-8"))


@cache
def _texts(lang: str) -> dict[str, str]:
    # One flat dict per language: a prompt on the call's hot path is a single lookup.
    out: dict[str, str] = {}
    for section, entries in _load(lang).items():
        if section == SETTINGS_SECTION:
            continue
        prefix = "" if section == PROMPTS_SECTION else f"{section}."
        out.update({f"{prefix}{key}": value for key, value in entries.items()})
    return out


def language(lang: str | None) -> str:
    """``lang`` if there are words for it, else the default language."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def catalog(lang: str) -> Mapping[str, str]:
    """Every text of ``lang`` by key (prompts bare, other sections as ``section.key``)."""
    return dict(_texts(lang))


def voice(lang: str) -> Mapping[str, str]:
    """Twilio voice settings of ``lang``: ``language``, ``voice`` and ``pay_language``."""
    return dict(_load(lang)[SETTINGS_SECTION])


def text(key: str, lang: str, **params: Any) -> str:
    """The text ``key`` in ``lang`` with ``{name}`` placeholders filled; a missing key raises KeyError."""
    return _texts(lang)[key].format_map(params)


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders used by a text template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
