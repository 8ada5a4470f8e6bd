"""Counts in words for the terminal ("1 account", "7 accounts"): English only, for operators."""

from typing import Protocol

# What ``ivr worker`` and ``ivr agents callbacks`` say they sent.
TEXTS = ("text", "texts")
STATUS_CALLBACKS = ("status callback to agents' systems", "status callbacks to agents' systems")


class Outcomes(Protocol):
    """What an outbox pass reports (``ivr.outbox.engine.Report``)."""

    sent: int
    retried: int
    failed: int
    held: int
    dropped: int


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``number`` with its noun in the right number: ``count(1, "text")`` is ``"1 text"``."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def sent_summary(report: Outcomes, singular: str, plural: str | None = None) -> str:
    """One outbox pass in a sentence: ``Sent 3 texts, 1 will be retried, 2 held for later``."""
    return ", ".join([f"Sent {count(report.sent, singular, plural)}", *_other_outcomes(report)])


def pass_summary(report: Outcomes) -> str:
    """The same for a log line: ``3 sent, 2 held for later`` (zeros left out but the first)."""
    return ", ".join([f"{report.sent} sent", *_other_outcomes(report)])


def _other_outcomes(report: Outcomes) -> list[str]:
    parts = []
    if report.retried:
        parts.append(f"{report.retried} will be retried")
    if report.failed:
        parts.append(f"{report.failed} failed for good")
    if report.held:
        # Quiet hours for reminders, or a provider's "too many requests" pause.
        parts.append(f"{report.held} held for later")
    if report.dropped:
        parts.append(f"{report.dropped} no longer needed")
    return parts
