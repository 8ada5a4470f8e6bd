"""The call flow: states, the table that joins them, and a pure engine that walks it."""

from .engine import KeyPress, PayOutcome, Silence, Speech, Turn, advance, repeat, resume, start
from .steps import AccountView, Act, CallContext, CardOnFile, Entry, Keys, Pay, Prompt, State, Step
from .table import ENTRY_POINTS, FLOW, INITIAL

__all__ = [
    "ENTRY_POINTS",
    "FLOW",
    "INITIAL",
    "AccountView",
    "Act",
    "CallContext",
    "CardOnFile",
    "Entry",
    "KeyPress",
    "Keys",
    "Pay",
    "PayOutcome",
    "Prompt",
    "Silence",
    "Speech",
    "State",
    "Step",
    "Turn",
    "advance",
    "repeat",
    "resume",
    "start",
]
