"""Outbox tables: the columns every outbox row has (``OutboxRow``) and the SMS outbox itself.

Other wings keep their own outbox tables (agents' status callbacks) on the same columns, so the one
engine in ``engine.py`` can claim, retry and give up on any of them.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models import UTCDateTime, utcnow


class OutboxRow:
    """The columns the outbox engine reads and writes; a table of deliveries mixes this in.

    status: queued -> sending -> sent | failed ; each kind adds its own ends (``dropped``,
    ``superseded``). ``attempts`` counts deliveries begun, a stopped worker's included.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def quiet_hours_phone(self) -> str | None:
        """The number whose local time may hold this row back; None when quiet hours never apply."""
        return None


class OutboxMessage(OutboxRow, db.Model):
    """An SMS waiting to leave (receipts, reminders): written in the same transaction as its cause.

    ``dedupe_key`` (e.g. ``receipt:42``) is unique, so one payment can never queue two receipts.
    A reminder whose bill is paid before it goes is ``dropped``.
    """

    __tablename__ = "outbox_messages"

    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # receipt | reminder | reply
    to_number: Mapped[str] = mapped_column(sa.String(20))
    account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"), index=True)  # a payment's page
    respect_quiet_hours: Mapped[bool] = mapped_column(default=False)
    error_code: Mapped[int | None] = mapped_column()
    provider_sid: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (
        # The engine's claim reads queued rows in next_attempt_at order.
        sa.Index("ix_outbox_due", "status", "next_attempt_at"),
        # /ops: Today counts a day's receipts by status; Messages lists the newest of a status (failed
        # ones are few: without it, the newest 200 were looked for among every message).
        sa.Index("ix_outbox_messages_kind_created_at", "kind", "created_at"),
        sa.Index("ix_outbox_messages_status_id", "status", "id"),
    )

    def quiet_hours_phone(self) -> str | None:
        """The recipient, for texts that quiet hours hold (reminders); None for receipts and replies."""
        return self.to_number if self.respect_quiet_hours else None
