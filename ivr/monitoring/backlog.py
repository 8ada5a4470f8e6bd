"""The outbox's backlog, read from the database when Prometheus scrapes (never on a webhook).

The database is the one place that knows what ``ivr worker`` still owes, wherever the worker runs,
so these gauges show a stopped or overwhelmed worker even when its own counters are not scraped.
"""

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..agents.models import CallbackDelivery
from ..models import UTCDateTime
from ..outbox import texts
from ..outbox.models import OutboxMessage, OutboxRow

logger = logging.getLogger(__name__)

# Each outbox table; its kinds (a column of the table, or one name for all its rows); and which of
# its failed rows still reached someone another way, so they are no failure to be told about.
TABLES: tuple[tuple[type[OutboxRow], Any, Callable[[], sa.ColumnElement[bool]] | None], ...] = (
    (OutboxMessage, OutboxMessage.kind, texts.sent_to_phone_on_file),
    (CallbackDelivery, "agent_callback", None),
)
# Reported even with nothing due, so a dashboard draws 0 rather than a gap.
ALWAYS_REPORTED = ("receipt", "reminder", "agent_callback")


class OutboxBacklog(Collector):
    """Per kind: rows due now, how long the longest-waiting one has been due, rows given up."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One query per outbox table; nothing when the database does not answer (``/healthz`` tells)."""
        try:
            rows = [row for table in TABLES for row in self._read(*table)]
        except SQLAlchemyError:
            self.session.rollback()
            logger.warning("metrics: the outbox backlog could not be read", exc_info=True)
            return
        due = GaugeMetricFamily("ivr_outbox_due_messages", "Outbox rows due now and not yet sent, by kind",
                                labels=["kind"])
        waiting = GaugeMetricFamily(
            "ivr_outbox_oldest_due_seconds",
            "Seconds the longest-waiting due outbox row has been due (0: none due), by kind",
            labels=["kind"],
        )
        failed = GaugeMetricFamily(
            "ivr_outbox_failed_messages",
            "Outbox rows given up without reaching anyone (all time), by kind",
            labels=["kind"],
        )
        seen = {kind: (0, None, 0) for kind in ALWAYS_REPORTED}
        seen.update({kind: (count, oldest, gave_up) for kind, count, oldest, gave_up in rows})
        for kind, (count, oldest, gave_up) in sorted(seen.items()):
            due.add_metric([kind], count)
            waiting.add_metric([kind], max((self.now - oldest).total_seconds(), 0.0) if oldest else 0.0)
            failed.add_metric([kind], gave_up)
        yield due
        yield waiting
        yield failed

    def _read(self, model: type[OutboxRow], kind: Any, reached_anyway: Callable[[], sa.ColumnElement[bool]] | None
              ) -> list[tuple[str, int, datetime | None, int]]:
        """``(kind, due, the oldest due row's next_attempt_at, failed)`` for each kind in ``model``'s table."""
        # Both conditions are ranges of the (status, next_attempt_at) index every outbox table has.
        is_due = sa.and_(model.status == "queued", model.next_attempt_at <= self.now)
        is_failed = model.status == "failed"
        columns = (
            sa.func.count().filter(is_due),
            sa.type_coerce(sa.func.min(model.next_attempt_at).filter(is_due), UTCDateTime),
            sa.func.count().filter(is_failed),
        )
        if reached_anyway is not None:
            is_failed = sa.and_(is_failed, sa.not_(reached_anyway()))
        wanted = sa.or_(is_due, is_failed)
        if isinstance(kind, str):
            count, oldest, gave_up = self.session.execute(sa.select(*columns).where(wanted)).one()
            return [(kind, count, oldest, gave_up)]
        query = sa.select(kind, *columns).where(wanted).group_by(kind)
        return [(name, count, oldest, gave_up) for name, count, oldest, gave_up in self.session.execute(query)]
