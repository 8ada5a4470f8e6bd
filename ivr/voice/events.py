"""A tiny in-process signal: the voice webhooks announce what happened to a call; features listen.

Listeners run inside the webhook's transaction and must only write to the database (no network):
anything that leaves the building goes through the outbox or the worker.
"""

from collections.abc import Callable
from typing import Any

Listener = Callable[..., None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Listener:
    """Register ``listener(kind, call, **details)``; usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def emit(kind: str, call: Any, **details: Any) -> None:
    """Tell every listener: ``turn`` (details: turn), ``pay_field`` (field), ``status`` (status)."""
    for listener in list(_listeners):
        listener(kind, call, **details)
