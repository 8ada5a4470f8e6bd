"""The flow engine: given where a call is and what the caller did, decide the next turn. No I/O."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .steps import (
    INVALID_LIMIT,
    SILENCE_LIMIT,
    AccountView,
    Act,
    CallContext,
    CardOnFile,
    Decision,
    Entry,
    Keys,
    LaterDesk,
    PaidView,
    Pay,
    Prompt,
    State,
    Step,
)
from .table import ENTRY_POINTS, FLOW

KEYPAD_KEYS = frozenset("0123456789*#")
_NOT_A_KEY = "not a key"  # a label no step's ``on`` can hold (labels are words without spaces)


@dataclass(frozen=True)
class KeyPress:
    """Digits from a ``<Gather>`` (without the finishing key)."""

    digits: str


@dataclass(frozen=True)
class Silence:
    """The ``<Gather>`` timed out with no key."""


@dataclass(frozen=True)
class PayOutcome:
    """What became of a ``<Pay>`` (or of an ``Act`` the web layer did): a label from ``steps`` plus facts to remember."""

    label: str
    updates: Mapping[str, Any] = field(default_factory=dict)


Event = KeyPress | Silence | PayOutcome


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

    @property
    def data(self) -> Mapping[str, Any]:
        return {**self._ctx.data, **self._updates}

    def caller_accounts(self) -> list[AccountView]:
        return self._ctx.caller_accounts()

    def account(self) -> AccountView | None:
        return self._ctx.account()

    def card_on_file(self) -> CardOnFile | None:
        return self._ctx.card_on_file()

    def verify(self, account_number: str, last4: str) -> bool:
        return self._ctx.verify(account_number, last4)

    @property
    def later(self) -> LaterDesk:
        return self._ctx.later

    def recent_payments(self, limit: int) -> list[PaidView]:
        return self._ctx.recent_payments(limit)


def _says(step: Step, ctx: CallContext) -> tuple[Prompt, ...]:
    if callable(step.say):
        return step.say(ctx)
    return tuple(Prompt(key) for key in step.say)


def _reset_counters() -> dict[str, Any]:
    return {"silences": 0, "invalid": 0}


def _enter(state: State, ctx: CallContext, updates: dict[str, Any], said: tuple[Prompt, ...]) -> Turn:
    """Arrive in ``state``: speak it, and follow routing steps until one waits or ends the call."""
    view = _Overlay(ctx, updates)
    for _hop in range(len(FLOW)):  # routing steps never loop; the bound makes a bad table fail loudly
        step = FLOW[state]
        said += _says(step, view)
        if step.route is None:
            return Turn(state, said, step.expect, updates, final=step.final, dial=step.dial)
        decision = step.route("", view)
        updates.update(decision.updates)
        said += decision.say
        state = step.on[decision.label]
    raise RuntimeError(f"routing loop at {state}")


def start(entry: Entry, ctx: CallContext) -> Turn:
    """The first turn of a call entering the flow by ``entry``."""
    return _enter(ENTRY_POINTS[entry], ctx, _reset_counters(), ())


def repeat(state: State, ctx: CallContext) -> Turn:
    """Say the current step again without changing anything."""
    step = FLOW[state]
    return Turn(state, _says(step, ctx), step.expect, {}, final=step.final, dial=step.dial)


def resume(turn: Turn, outcome: PayOutcome, ctx: CallContext) -> Turn:
    """Finish ``turn``, which waits on an ``Act``, with what the web layer's action came to.

    The caller hears ``turn``'s words and then the outcome's step, as one answer: nothing was
    sent to Twilio in between.
    """
    step = FLOW[turn.state]
    assert isinstance(step.expect, Act), f"{turn.state} does not wait on an action"
    updates = {**turn.updates, **_reset_counters(), **outcome.updates}
    return _enter(step.on[outcome.label], ctx, updates, turn.say)


def advance(state: State, event: Event, ctx: CallContext) -> Turn:
    """Decide the next turn from the current ``state`` and the caller's ``event``."""
    step = FLOW[state]
    if isinstance(event, PayOutcome):
        if event.label not in step.on:
            return repeat(state, ctx)
        return _enter(step.on[event.label], ctx, {**_reset_counters(), **event.updates}, ())

    if isinstance(event, Silence):
        if step.on_silence is not None:
            return _enter(step.on_silence, ctx, _reset_counters(), ())
        silences = int(ctx.data.get("silences", 0)) + 1
        if silences > SILENCE_LIMIT:
            return _enter(State.NO_INPUT, ctx, _reset_counters(), ())
        return Turn(state, (Prompt("silence_reprompt"),) + _says(step, ctx), step.expect, {"silences": silences})

    if not isinstance(step.expect, Keys):  # keys where none were asked for: say the step again
        return repeat(state, ctx)
    digits = event.digits
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

    invalid = int(ctx.data.get("invalid", 0)) + 1
    updates = {**decision.updates, "invalid": invalid}
    if invalid >= INVALID_LIMIT:
        return _enter(State.TOO_MANY_ATTEMPTS, ctx, {**updates, **_reset_counters()}, decision.say)
    explanation = decision.say or (Prompt("invalid_key"),)
    return Turn(state, explanation + _says(step, _Overlay(ctx, updates)), step.expect, updates)
