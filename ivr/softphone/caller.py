"""The person on the phone: keys from a script or the keyboard; card entry is never echoed."""

import getpass
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from .cards import CARD_NUMBER, EXPIRY, POSTAL_CODE, SECURITY_CODE

DTMF = "0123456789*#"
SILENCE = "_"
SAY = "@"  # in --keys: say the next --say phrase here
DEFAULT_CONFIDENCE = 0.92  # how sure Twilio's recogniser says it is of words typed or --say
CARD_FIELDS = (CARD_NUMBER, EXPIRY, SECURITY_CODE, POSTAL_CODE)
_FIELD_LABELS = {
    CARD_NUMBER: "card number",
    EXPIRY: "expiry MM/YY",
    SECURITY_CODE: "security code",
    POSTAL_CODE: "ZIP code",
}


class CallerHangup(Exception):
    """The caller hung up (script ran out, Ctrl-C, end of input)."""


class Words(str):
    """Words the caller says at a ``<Gather input="dtmf speech">``, with the confidence Twilio reports."""

    confidence: float = DEFAULT_CONFIDENCE


def words(text: str, confidence: float = DEFAULT_CONFIDENCE) -> Words:
    """What the caller says, as Twilio's recogniser would hand it over."""
    said = Words(" ".join(text.split()))
    said.confidence = confidence
    return said


def parse_keys(script: str) -> list[str]:
    """Split ``--keys`` into tokens: DTMF keys, ``_`` for silence, or ``@`` for the next ``--say``.

    :raises ValueError: for a token with any other character.
    """
    tokens = script.split()
    for token in tokens:
        if token not in (SILENCE, SAY) and not set(token) <= set(DTMF):
            raise ValueError(f"{token!r} is not DTMF keys (0-9 * #), _ for silence or @ for the next --say")
    return tokens


def script(keys: str | None, said: Sequence[str], confidence: float = DEFAULT_CONFIDENCE) -> list[str]:
    """The caller's turns: ``--keys`` with each ``@`` replaced by the next ``--say``; ``--say`` alone
    answers every prompt by voice, in order.

    :raises ValueError: for malformed keys, or more ``@`` than ``--say`` phrases.
    """
    phrases = deque(words(text, confidence) for text in said)
    if keys is None:
        return list(phrases)
    turns: list[str] = []
    for token in parse_keys(keys):
        if token == SAY:
            if not phrases:
                raise ValueError("--keys has more @ than there are --say phrases")
            turns.append(phrases.popleft())
        else:
            turns.append(token)
    return turns


def parse_card(spec: str) -> dict[str, list[str]]:
    """``number,MM/YY,cvc,zip`` into what the caller types per field; ``a|b`` = try, then retry.

    :raises ValueError: when the spec is not four or fewer comma-separated keypad entries.
    """
    parts = spec.split(",")
    if len(parts) > len(CARD_FIELDS) or not re.fullmatch(r"[0-9*#/|,]*", spec):
        raise ValueError("a card is number,MM/YY,cvc,zip (keypad digits; '|' separates retries)")
    return {name: part.split("|") for name, part in zip(CARD_FIELDS, parts, strict=False)}


@dataclass(frozen=True)
class GatherInput:
    """What a ``<Gather>`` collected: ``Digits``, ``FinishedOnKey``, and every key pressed."""

    digits: str
    finished_on_key: str
    pressed: str
    speech: Words | None = None  # said instead of keyed: sent as SpeechResult and Confidence


class Keypad:
    """DTMF as Twilio buffers it: keys one Gather does not take wait for the next (type-ahead)."""

    def __init__(self, next_keys: Callable[[str], str | None]) -> None:
        self.next_keys = next_keys
        self.buffer: deque[str] = deque()

    def gather(self, num_digits: int | None, finish_on_key: str, hint: str, hears_speech: bool = False) -> GatherInput:
        """Collect one Gather's input; an exhausted key run is followed by silence (the timeout).

        Words go to a Gather that listens for speech; one that takes keys only hears silence.

        :raises CallerHangup: when the caller has nothing more to press.
        """
        if not self.buffer:
            token = self.next_keys(hint)
            if token is None:
                raise CallerHangup
            if token == SILENCE:
                return GatherInput("", "", "")
            if isinstance(token, Words):
                return GatherInput("", "", "", speech=token if hears_speech else None)
            self.buffer.extend(token)
        digits = pressed = ""
        while self.buffer:
            key = self.buffer.popleft()
            pressed += key
            # Twilio: finishOnKey only finishes when digits precede it; alone it is an ordinary key.
            if finish_on_key and key == finish_on_key and digits:
                return GatherInput(digits, key, pressed)
            digits += key
            if num_digits and len(digits) >= num_digits:
                return GatherInput(digits, "", pressed)
        return GatherInput(digits, "", pressed)


class ScriptedCaller:
    """A caller following ``--keys`` and ``--card``; hangs up when the script runs out."""

    def __init__(
        self, keys: Sequence[str] = (), cards: Sequence[str] = (), hangup_in_pay: bool = False
    ) -> None:
        self.keys = deque(keys)
        self.cards = deque(parse_card(c) for c in cards)
        self.hangup_in_pay = hangup_in_pay
        self.card: dict[str, list[str]] = {}

    def next_keys(self, hint: str) -> str | None:
        """The next ``--keys`` token, or None to hang up."""
        return self.keys.popleft() if self.keys else None

    def start_pay(self) -> None:
        """Pick up the next ``--card`` for a new ``<Pay>``.

        :raises CallerHangup: with ``--hangup-in-pay``, or when no card is left.
        """
        if self.hangup_in_pay or not self.cards:
            raise CallerHangup
        self.card = self.cards.popleft()

    def pay_entry(self, field: str, attempt: int) -> str:
        """What the caller types for ``field`` on ``attempt`` (later retries repeat the last)."""
        tries = self.card.get(field, [""])
        return tries[min(attempt, len(tries)) - 1]


class InteractiveCaller:
    """A person at the keyboard: a line of keys per Gather, card fields typed without echo."""

    def __init__(self, stdin: TextIO, prompt_stream: TextIO, confidence: float = DEFAULT_CONFIDENCE) -> None:
        self.stdin = stdin
        self.out = prompt_stream
        self.confidence = confidence

    def next_keys(self, hint: str) -> str | None:
        """Read keys (or words, which are said) for a Gather; an empty line is silence, end of input
        or Ctrl-C hangs up."""
        while True:
            print(
                f"  keys or words ({hint}; Enter = silence, Ctrl-D = hang up)> ",
                end="",
                file=self.out,
                flush=True,
            )
            try:
                line = self.stdin.readline()
            except KeyboardInterrupt:
                return None
            if not line:
                return None
            keys = "".join(line.split())
            if not keys:
                return SILENCE
            if set(keys) <= set(DTMF):
                return keys
            if any(ch.isalpha() for ch in line):
                return words(line, self.confidence)  # letters: the caller says it
            print("  only 0-9, * and # are on a phone keypad; type words to say them", file=self.out, flush=True)

    def start_pay(self) -> None:
        """Nothing to prepare: the caller types each field when asked."""

    def pay_entry(self, field: str, attempt: int) -> str:
        """Read one card field without echoing it; Ctrl-C hangs up.

        :raises CallerHangup: on Ctrl-C or end of input.
        """
        prompt = f"  {_FIELD_LABELS[field]} (hidden; * cancels, Enter = silence)> "
        try:
            entry = getpass.getpass(prompt, stream=self.out)
        except (KeyboardInterrupt, EOFError) as exc:
            print(file=self.out, flush=True)
            raise CallerHangup from exc
        return "".join(entry.split())
