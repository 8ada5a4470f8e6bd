"""The flow table as Markdown, for ``ivr flow-table`` and the README."""

from .steps import Act, Keys, Pay, Step
from .table import ENTRY_POINTS, FLOW


def _says(step: Step) -> str:
    if callable(step.say):
        return f"`{step.say.__name__}`"
    return ", ".join(f"`{key}`" for key in step.say) or "—"


def _expects(step: Step) -> str:
    if isinstance(step.expect, Pay):
        return "card via `<Pay>`"
    if isinstance(step.expect, Act):
        return f"— (the web layer does `{step.expect.action}` at once, no `<Pay>`)"
    if isinstance(step.expect, Keys):
        keys = step.expect
        if keys.num_digits == 1:
            return "1 key"
        if keys.num_digits:
            return f"{keys.num_digits} digits"
        return f"digits then `{keys.finish_on_key}`"
    if step.route is not None:
        return f"— (routes by `{step.route.__name__}`)"
    return "— (ends the call" + (f", dials {step.dial})" if step.dial else ")")


def _transitions(step: Step) -> str:
    parts = [f"{label} → {target.value}" for label, target in step.on.items()]
    if step.on_silence is not None:
        parts.append(f"silence → {step.on_silence.value}")
    text = ", ".join(parts) or "—"
    return f"`{step.decide.__name__}`: {text}" if step.decide else text


def markdown() -> str:
    """One row per state: what it says, what it expects, and where each answer goes."""
    entries = ", ".join(f"{entry.value} → `{state.value}`" for entry, state in ENTRY_POINTS.items())
    lines = [
        (f"Calls enter the flow by one of its entry points: {entries}. In every step that expects keys: `*` "
        "repeats it, `0` reaches the agent when `AGENT_TRANSFER_NUMBER` is set (both said once, before "
        "identification), silence re-prompts twice then says goodbye, and a key that is not an option is "
        "explained (three times at most). A re-prompt says the step's choices (a step that tells something "
        "first, like the balance, leaves that out), and after one silence every wait for a key is twice as long "
        "for the rest of the call. Every such step "
        "also takes speech (`flows/speech.py`): words it understands count as its keys, words heard with "
        "doubt are read back for a yes or a no, and words it does not understand count as a wrong key."),
        "",
        "| State | Says | Expects | Answer → next state |",
        "|---|---|---|---|",
    ]
    for state, step in FLOW.items():
        lines.append(f"| `{state.value}` | {_says(step)} | {_expects(step)} | {_transitions(step)} |")
    return "\n".join(lines)
