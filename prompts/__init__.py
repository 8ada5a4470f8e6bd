"""Spoken and texted words, one TOML catalogue per language with identical keys.

Only formatting lives here: which words to say is decided by ``flows``.
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

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "catalog", "placeholders", "speech", "text", "voice"]


@cache
def _load(lang: str) -> dict[str, Any]:
    if lang not in LANGUAGES:
        raise KeyError(f"no prompts for language {lang!r}")
    return tomllib.loads(files(__package__).joinpath(f"{lang}.toml").read_text(encoding="utf-8"))


def catalog(lang: str) -> Mapping[str, str]:
    """Every prompt of ``lang`` by key."""
    return dict(_load(lang)["prompts"])


def voice(lang: str) -> Mapping[str, str]:
    """Twilio voice settings of ``lang``: ``language``, ``voice`` and ``pay_language``."""
    return dict(_load(lang)["voice"])


def text(key: str, lang: str, **params: Any) -> str:
    """The prompt ``key`` in ``lang`` with ``{name}`` placeholders filled; a missing key raises KeyError."""
    return _load(lang)["prompts"][key].format_map(params)


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders used by a prompt template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
