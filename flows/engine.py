"""The flow engine: given where a call is and what the caller did, decide the next turn. No I/O."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import speech
from .steps import (
    INVALID_LIMIT,
    SILENCE_LIMIT,
    AccountView,
    Act,
    CallContext,
    CardOnFile,
    Decision,
    Digits,
    Entry,
    Keys,
    LaterDesk,
    Money,
    PaidView,
    Pay,
    Prompt,
    State,
    Step,
)
from .table import ENTRY_POINTS, FLOW

KEYPAD_KEYS = frozenset("0123456789*#")
# A caller who let one question time out gets this many times the wait for every key after it, to
# the end of the call (kept in the call's data as ``more_time``): slow hands, a relay operator, a
# phone held away from the ear to find the keypad.
MORE_TIME_FACTOR = 2
_NOT_A_KEY = "not a key"  # a label no step's ``on`` can hold (labels are words without spaces)


@dataclass(frozen=True)
class KeyPress:
    """Digits from a ``<Gather>`` (without the finishing key)."""

    digits: str


@dataclass(frozen=True)
class Silence:
    """The ``<Gather>`` timed out with no key."""


@dataclass(frozen=True)
class Speech:
    """What a ``<Gather>`` heard (``SpeechResult``), and whether recognition was sure enough
    (``Confidence`` at or above the co-op's threshold) to act on without reading it back."""

    text: str
    confident: bool


@dataclass(frozen=True)
class PayOutcome:
    """What became of a ``<Pay>`` (or of an ``Act`` the web layer did): a label from ``steps`` plus facts to remember."""

    label: str
    updates: Mapping[str, Any] = field(default_factory=dict)


Event = KeyPress | Silence | Speech | PayOutcome
# The read-back's own question: 1 (or "yes") acts on what was heard, 2 (or "no") asks again.
CONFIRM_HEARD = Keys(num_digits=1, words=speech.YES_NO)


@dataclass(frozen=True)
class Turn:
    """The engine's answer: the state now waited in, what to say, what to expect, data to save."""

    state: State
    say: tuple[Prompt, ...]
    expect: Keys | Pay | Act | None
    updates: Mapping[str, Any]
    final: bool = False
    dial: str | None = None

    def language(self, current: str) -> str:
        """The call's language after this turn."""
        return str(self.updates.get("language", current))


class _Overlay:
    """The caller's context with this turn's not-yet-saved updates visible to later decisions."""

    def __init__(self, ctx: CallContext, updates: dict[str, Any]) -> None:
        self._ctx = ctx
        self._updates = updates
        self.agent_available = ctx.agent_available
        self.min_payment_cents = ctx.min_payment_cents
        self.max_payment_cents = ctx.max_payment_cents
        self.convenience_fee_cents = ctx.convenience_fee_cents
        self.longer_key_waits = ctx.longer_key_waits

    @property
    def data(self) -> Mapping[str, Any]:
        return {**self._ctx.data, **self._updates}

    def caller_accounts(self) -> list[AccountView]:
        return self._ctx.caller_accounts()

    def account(self) -> AccountView | None:
        return self._ctx.account()

    def card_on_file(self) -> CardOnFile | None:
        return self._ctx.card_on_file()

    def verify(self, account_number: str, answer: str, factor: str = "last4") -> bool:
        return self._ctx.verify(account_number, answer, factor)

    @property
    def later(self) -> LaterDesk:
        return self._ctx.later

    def recent_payments(self, limit: int) -> list[PaidView]:
        return self._ctx.recent_payments(limit)


def _expect(step: Step, ctx: CallContext) -> Keys | Pay | Act | None:
    """The step's expectation with its spoken words resolved for this call (a menu's keys may move)."""
    expect = step.expect
    if isinstance(expect, Keys) and callable(expect.words):
        return replace(expect, words=expect.words(ctx))
    return expect


def _says(step: Step, ctx: CallContext) -> tuple[Prompt, ...]:
    if callable(step.say):
        return step.say(ctx)
    return tuple(Prompt(key) for key in step.say)


def _reprompt(step: Step, ctx: CallContext) -> tuple[Prompt, ...]:
    """What is said again after silence or a wrong key: the step's choices, shorter than its first words."""
    return step.reprompt(ctx) if step.reprompt is not None else _says(step, ctx)


def _reset_counters() -> dict[str, Any]:
    return {"silences": 0, "invalid": 0}


def _enter(state: State, ctx: CallContext, updates: dict[str, Any], said: tuple[Prompt, ...]) -> Turn:
    """Arrive in ``state``: speak it, and follow routing steps until one waits or ends the call."""
    view = _Overlay(ctx, updates)
    for _hop in range(len(FLOW)):  # routing steps never loop; the bound makes a bad table fail loudly
        step = FLOW[state]
        said += _says(step, view)
        if step.route is None:
            return Turn(state, said, _expect(step, view), updates, final=step.final, dial=step.dial)
        decision = step.route("", view)
        updates.update(decision.updates)
        said += decision.say
        state = step.on[decision.label]
    raise RuntimeError(f"routing loop at {state}")


def _paced(turn: Turn, ctx: CallContext) -> Turn:
    """``turn`` with a longer wait for keys once the caller has timed out on a question in this call."""
    longer = ctx.longer_key_waits or {**ctx.data, **turn.updates}.get("more_time")
    if not isinstance(turn.expect, Keys) or not longer:
        return turn
    return replace(turn, expect=replace(turn.expect, timeout=turn.expect.timeout * MORE_TIME_FACTOR))


def start(entry: Entry, ctx: CallContext) -> Turn:
    """The first turn of a call entering the flow by ``entry``."""
    return _paced(_enter(ENTRY_POINTS[entry], ctx, _reset_counters(), ()), ctx)


def repeat(state: State, ctx: CallContext) -> Turn:
    """Say the current step again without changing anything."""
    step = FLOW[state]
    return _paced(Turn(state, _says(step, ctx), _expect(step, ctx), {}, final=step.final, dial=step.dial), ctx)


def resume(turn: Turn, outcome: PayOutcome, ctx: CallContext) -> Turn:
    """Finish ``turn``, which waits on an ``Act``, with what the web layer's action came to.

    The caller hears ``turn``'s words and then the outcome's step, as one answer: nothing was
    sent to Twilio in between.
    """
    step = FLOW[turn.state]
    assert isinstance(step.expect, Act), f"{turn.state} does not wait on an action"
    updates = {**turn.updates, **_reset_counters(), **outcome.updates}
    return _paced(_enter(step.on[outcome.label], ctx, updates, turn.say), ctx)


def advance(state: State, event: Event, ctx: CallContext) -> Turn:
    """Decide the next turn from the current ``state`` and the caller's ``event``."""
    return _paced(_advance(state, event, ctx), ctx)


def _advance(state: State, event: Event, ctx: CallContext) -> Turn:
    step = FLOW[state]
    if isinstance(event, PayOutcome):
        if event.label not in step.on:
            return repeat(state, ctx)
        return _enter(step.on[event.label], ctx, {**_reset_counters(), **event.updates}, ())

    heard = ctx.data.get("heard_keys")
    if heard is not None and isinstance(step.expect, Keys):
        return _answer_read_back(state, step, str(heard), event, ctx)

    if isinstance(event, Silence):
        if step.on_silence is not None:
            return _enter(step.on_silence, ctx, _reset_counters(), ())
        silences = int(ctx.data.get("silences", 0)) + 1
        if silences > SILENCE_LIMIT:
            return _enter(State.NO_INPUT, ctx, _reset_counters(), ())
        # Asked again with more time to answer, now and for the rest of the call.
        return Turn(
            state, (Prompt("silence_reprompt"),) + _reprompt(step, ctx), _expect(step, ctx),
            {"silences": silences, "more_time": True},
        )

    if not isinstance(step.expect, Keys):  # keys or words where none were asked for: say the step again
        return repeat(state, ctx)
    if isinstance(event, Speech):
        return _speech(state, step, event, ctx)
    return _keys(state, step, event.digits, ctx)


def _keys(state: State, step: Step, digits: str, ctx: CallContext) -> Turn:
    """Decide on keys pressed (or words understood as keys) at a step that expects keys."""
    if not KEYPAD_KEYS.issuperset(digits):
        # Only a keypad's ASCII 0-9 * # are keys. Anything else (Arabic or full-width digits, say)
        # is a wrong key, explained as one; no decision ever sees it, so no identification is tried.
        decision = Decision(_NOT_A_KEY)
    elif digits == "*" and step.repeatable:
        return repeat(state, ctx)
    elif digits == "0" and step.allow_agent and ctx.agent_available:
        return _enter(State.AGENT, ctx, _reset_counters(), ())
    else:
        decision = step.decide(digits, ctx) if step.decide else Decision(digits)
    if decision.label in step.on:
        updates = {**_reset_counters(), **decision.updates}
        return _enter(step.on[decision.label], ctx, updates, decision.say)
    return _invalid(state, step, decision, ctx)


def _invalid(state: State, step: Step, decision: Decision, ctx: CallContext) -> Turn:
    """A wrong answer: explained and asked again, three times at most."""
    invalid = int(ctx.data.get("invalid", 0)) + 1
    updates = {**decision.updates, "invalid": invalid}
    if invalid >= INVALID_LIMIT:
        return _enter(State.TOO_MANY_ATTEMPTS, ctx, {**updates, **_reset_counters()}, decision.say)
    explanation = decision.say or (Prompt("invalid_key"),)
    view = _Overlay(ctx, updates)
    return Turn(state, explanation + _reprompt(step, view), _expect(step, view), updates)


def _speech(state: State, step: Step, event: Speech, ctx: CallContext) -> Turn:
    """Words at a step that expects keys: act on them as keys only when they were understood surely.

    Words that do not parse are a wrong answer with a clear "say it or use the keypad"; words
    understood with doubt (low confidence, or some words not understood) are read back for a yes
    or a no, and nothing is decided until the caller says which. The words themselves are never
    kept: only the keys they stand for.
    """
    expect = _expect(step, ctx)
    assert isinstance(expect, Keys)
    words = expect.words if isinstance(expect.words, Mapping) else {}
    heard = speech.hear(event.text, expect.hear, words, str(ctx.data.get("language", "en")))
    if heard is None:
        return _invalid(state, step, Decision(_NOT_A_KEY, say=(Prompt("not_understood"),)), ctx)
    if event.confident and heard.sure:
        return _keys(state, step, heard.keys, ctx)
    return Turn(state, _read_back(expect, heard.keys), CONFIRM_HEARD, {"heard_keys": heard.keys})


def _read_back(expect: Keys, keys: str) -> tuple[Prompt, ...]:
    """What was understood, in the step's own terms (an amount, digits or a choice), then yes or no."""
    if expect.hear == "amount":
        dollars, _, cents = keys.partition("*")
        said = Prompt("heard_amount", {"amount": Money(int(dollars or 0) * 100 + int(cents.ljust(2, "0") or 0))})
    elif expect.hear == "digits":
        said = Prompt("heard_digits", {"digits": Digits(keys)})
    else:
        said = Prompt("heard_choice", {"choice": Digits(keys)})
    return (said, Prompt("heard_check"))


def _answer_read_back(state: State, step: Step, heard: str, event: Event, ctx: CallContext) -> Turn:
    """The caller's yes or no to a read-back: yes acts on the keys heard, no (or silence) asks the step again."""
    cleared = {"heard_keys": None}
    if isinstance(event, Speech):
        answer = speech.hear(event.text, "menu", speech.YES_NO, str(ctx.data.get("language", "en")))
        key = answer.keys if answer is not None else ""
    else:
        key = event.digits if isinstance(event, KeyPress) else "2"
    if key == "0":  # the agent, as at any step
        turn = _keys(state, step, key, _Overlay(ctx, cleared))
        return replace(turn, updates={**cleared, **turn.updates})
    if key == "1":
        turn = _keys(state, step, heard, _Overlay(ctx, cleared))
        return replace(turn, updates={**cleared, **turn.updates})
    if key == "2":
        return Turn(state, _says(step, ctx), _expect(step, ctx), cleared)
    # Anything else: the question again, counted like a wrong key so it cannot go on for ever.
    invalid = int(ctx.data.get("invalid", 0)) + 1
    if invalid >= INVALID_LIMIT:
        return _enter(State.TOO_MANY_ATTEMPTS, ctx, {**cleared, **_reset_counters()}, ())
    expect = _expect(step, ctx)
    assert isinstance(expect, Keys)
    return Turn(state, (Prompt("invalid_key"),) + _read_back(expect, heard), CONFIRM_HEARD, {"invalid": invalid})
