"""The reminders' notion of "now", in one place so tests can move it with ``monkeypatch``."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from ..models import utcnow


def now() -> datetime:
    """The current time, timezone-aware UTC (monkeypatch ``ivr.reminders.clock.now`` in tests)."""
    return utcnow()


def today(zone: str) -> date:
    """Today's date in the IANA ``zone`` (the co-op's ``ORG_TIMEZONE`` for due dates)."""
    return now().astimezone(ZoneInfo(zone)).date()
