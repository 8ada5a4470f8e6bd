"""A tiny in-process signal: the voice webhooks announce what happened to a call; features listen.

Each app keeps its own listeners (``create_app`` subscribes them), so two apps in one process never
hear each other's calls. Listeners run inside the webhook's transaction and must only write to the
database (no network): anything that leaves the building goes through the outbox or the worker.
"""

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

Listener = Callable[..., None]
EXTENSION = "ivr.call_events"


def subscribe(app: Flask, listener: Listener) -> None:
    """Have ``app`` call ``listener(kind, call, **details)`` on every call event (once, however often asked)."""
    listeners: list[Listener] = app.extensions.setdefault(EXTENSION, [])
    if listener not in listeners:
        listeners.append(listener)


def emit(kind: str, call: Any, **details: Any) -> None:
    """Tell the current app's listeners: ``turn`` (details: turn), ``pay_field`` (field), ``status`` (status)."""
    for listener in tuple(current_app.extensions.get(EXTENSION, ())):
        listener(kind, call, **details)
