"""The call flow: states, the table that joins them, and a pure engine that walks it."""

from .engine import KeyPress, PayOutcome, Silence, Turn, advance, repeat, start
from .steps import AccountView, CallContext, Entry, Keys, Pay, Prompt, State, Step
from .table import ENTRY_POINTS, FLOW, INITIAL

__all__ = [
    "ENTRY_POINTS",
    "FLOW",
    "INITIAL",
    "AccountView",
    "CallContext",
    "Entry",
    "KeyPress",
    "Keys",
    "Pay",
    "PayOutcome",
    "Prompt",
    "Silence",
    "State",
    "Step",
    "Turn",
    "advance",
    "repeat",
    "start",
]
