"""The agents' audit trail: one row per action, written in the same transaction as the action."""

import logging

from ..extensions import db
from ..masking import mask, mask_numbers
from .models import Agent, AuditEntry

logger = logging.getLogger(__name__)


def record(
    agent: Agent | None,
    action: str,
    outcome: str,
    *,
    account_number: str | None = None,
    call_sid: str | None = None,
    subject: str | None = None,
    detail: str | None = None,
    agent_name: str | None = None,
) -> AuditEntry:
    """Add an audit row (the caller commits); account numbers are masked, details scrubbed."""
    entry = AuditEntry(
        agent_id=agent.id if agent else None,
        agent_name=(agent.name if agent else agent_name) or "-",
        action=action,
        account=mask(account_number) if account_number else None,
        call_sid=call_sid,
        subject=subject,
        outcome=outcome[:40],
        detail=mask_numbers(detail)[:200] if detail else None,
    )
    db.session.add(entry)
    logger.info(
        "agent %s: %s %s -> %s", entry.agent_name, action, subject or entry.account or "", outcome
    )
    return entry
