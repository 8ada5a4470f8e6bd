"""Tables of the agent feature: agents and their hashed keys, transfers, assisted payments,
the audit log, rate-limit counters, status-callback deliveries and processed Twilio callbacks.

Nothing here holds card data, an API key or an unmasked account number.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models import UTCDateTime, utcnow
from ..outbox.models import OutboxRow

ROLES = ("agent", "supervisor", "admin")  # each may do what the one before it may, and more


class Agent(db.Model):
    """A co-op staff member who may use the API and the console; ``role`` (ROLES) says how far.

    agent: /agent and the API; supervisor: also reads /ops and retries messages; admin: also
    refunds, resends receipts and manages staff.

    ``key_hash`` is SHA-256 of the API key (keys are 256-bit random, so a plain hash is enough);
    ``signing_secret`` is HMAC-SHA256(key, "ivr-status-callback") and signs status callbacks, so
    the raw key is never stored yet the agent can still check our signatures (docs/agents.md, "Status callbacks").
    """

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    signing_secret: Mapped[str] = mapped_column(sa.String(64))
    active: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str] = mapped_column(sa.String(12), default="agent", server_default="agent")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def may(self, role: str) -> bool:
        """True when this member's role is ``role`` or above it."""
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)


class AgentSession(db.Model):
    """A console sign-in: the cookie names it by a random nonce, stored here only as its SHA-256.

    The signed cookie alone is not enough: a session is good while its row is neither ended
    (signed out) nor expired, so signing out ends it on the server, whoever kept a copy.
    """

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    nonce_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Transfer(db.Model):
    """A caller an agent sent into the secure pay step, and how far they got.

    status: waiting -> in_pay -> declined -> in_pay ... -> approved | caller_hung_up | failed
    """

    __tablename__ = "agent_transfers"

    id: Mapped[str] = mapped_column(sa.String(24), primary_key=True)  # "tr_" + random hex
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    return_to: Mapped[str | None] = mapped_column(
        sa.String(200)
    )  # the agent's number or SIP address
    status_callback: Mapped[str | None] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(20), default="waiting", index=True)
    field: Mapped[str | None] = mapped_column(sa.String(40))  # the <Pay> field being entered
    reason: Mapped[str | None] = mapped_column(sa.String(80))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    returned: Mapped[bool] = mapped_column(default=False)  # the caller was sent back to return_to
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Twilio fetched our TwiML
    version: Mapped[int] = mapped_column(default=1)  # bumped on every visible change
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssistedPayment(db.Model):
    """One agent-assisted Payments session on a live call (Twilio ``Calls/{sid}/Payments``).

    status: starting -> ready -> capturing -> processing -> approved | declined | cancelled
            | caller_hung_up | failed
    ``fields`` holds progress per card field: state, digit count, an error type and, for the card
    number only, the last four digits; never a value.
    """

    __tablename__ = "agent_assisted_payments"

    id: Mapped[str] = mapped_column(sa.String(24), primary_key=True)  # "ap_" + random hex
    agent_id: Mapped[int] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), index=True)
    payment_sid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # PK…
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(20), default="starting", index=True)
    field: Mapped[str | None] = mapped_column(sa.String(40))  # the field asked for last
    fields: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    required: Mapped[list[str] | None] = mapped_column(sa.JSON)  # None until Twilio says
    error: Mapped[str | None] = mapped_column(sa.String(60))  # the latest ErrorType
    reason: Mapped[str | None] = mapped_column(sa.String(120))
    actions: Mapped[int] = mapped_column(default=0)  # numbers each Twilio update (idempotency keys)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(db.Model):
    """Who did what, when, to which account (masked), and how it ended."""

    __tablename__ = "agent_audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agents.id"), index=True)
    agent_name: Mapped[str] = mapped_column(sa.String(80))
    action: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str | None] = mapped_column(sa.String(12))  # masked: "…5001"
    call_sid: Mapped[str | None] = mapped_column(sa.String(64))
    # transfer or assisted payment id, or a payment's confirmation number (its page lists its staff actions)
    subject: Mapped[str | None] = mapped_column(sa.String(24), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[str | None] = mapped_column(sa.String(200))


class RateCounter(db.Model):
    """Requests in one fixed window for one bucket (``agent:3:pay``); shared by every process."""

    __tablename__ = "agent_rate_counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(sa.String(120))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        sa.UniqueConstraint("bucket", "window_start", name="uq_agent_rate_counters_window"),
    )


class CallbackDelivery(OutboxRow, db.Model):
    """One status-callback POST owed to an agent's ``status_callback`` URL (an outbox row).

    status: queued -> sending -> sent | failed ; queued -> superseded (a newer change of the same
    transfer replaced it while it waited).
    """

    __tablename__ = "agent_callback_deliveries"

    transfer_id: Mapped[str] = mapped_column(sa.ForeignKey("agent_transfers.id"), index=True)
    version: Mapped[int] = mapped_column()
    url: Mapped[str] = mapped_column(sa.String(500))

    # The engine's claim reads queued rows in next_attempt_at order.
    __table_args__ = (sa.Index("ix_agent_callback_due", "status", "next_attempt_at"),)


class ProcessedCallback(db.Model):
    """A Payments status callback already applied: the same fingerprint again is a no-op."""

    __tablename__ = "agent_processed_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    assisted_id: Mapped[str] = mapped_column(
        sa.ForeignKey("agent_assisted_payments.id"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("assisted_id", "fingerprint", name="uq_agent_processed_callbacks_fp"),
    )
