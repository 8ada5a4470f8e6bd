"""Status callbacks to agents' systems, through an outbox: queued inside the Twilio webhook's
transaction, POSTed later by ``run_once`` (called from ``ivr worker`` or ``ivr agents callbacks``).

Each POST carries the transfer's JSON (as ``GET /api/agent/transfers/<id>`` shows it) with
``X-IVR-Signature: sha256=<HMAC-SHA256(signing secret, body)>`` and
``X-IVR-Event-Id: <id>.<version>``.
Delivery is at least once; a newer change supersedes an older one still waiting.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa

from ..extensions import db
from ..masking import mask_numbers
from ..models import utcnow
from .keys import sign_body
from .models import Agent, CallbackDelivery, Transfer

logger = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_GAP = timedelta(minutes=10)
# Progress of a phone call is worthless a few hours later: stop trying then.
GIVE_UP_AFTER = timedelta(hours=2)
CLAIM_FOR = timedelta(minutes=2)
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class CallbackReport:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0


def enqueue(transfer: Transfer, body: str) -> None:
    """Queue ``body`` for the transfer's ``status_callback`` (if any); the caller commits."""
    if not transfer.status_callback:
        return
    db.session.execute(
        sa.update(CallbackDelivery)
        .where(CallbackDelivery.transfer_id == transfer.id, CallbackDelivery.status == "queued")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    db.session.add(
        CallbackDelivery(
            transfer_id=transfer.id,
            version=transfer.version,
            url=transfer.status_callback,
            body=body,
            status="queued",
            next_attempt_at=utcnow(),
        )
    )


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most 10 minutes."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY_GAP)


def _claim(now: datetime, limit: int) -> list[int]:
    # A claim left by a stopped process is taken back: the receiver dedupes on X-IVR-Event-Id.
    db.session.execute(
        sa.update(CallbackDelivery)
        .where(CallbackDelivery.status == "sending", CallbackDelivery.claimed_until < now)
        .values(status="queued")
        .execution_options(synchronize_session=False)
    )
    rows = list(
        db.session.scalars(
            sa.select(CallbackDelivery)
            .where(CallbackDelivery.status == "queued", CallbackDelivery.next_attempt_at <= now)
            .order_by(CallbackDelivery.next_attempt_at, CallbackDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.status = "sending"
        row.claimed_until = now + CLAIM_FOR
        row.attempts += 1
    ids = [row.id for row in rows]
    db.session.commit()
    return ids


def _post(row: CallbackDelivery, secret: str) -> str | None:
    """POST one callback; None on a 2xx, else what went wrong."""
    body = row.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "coop-ivr-agent-callbacks/1",
        "X-IVR-Signature": sign_body(secret, body),
        "X-IVR-Event-Id": f"{row.transfer_id}.{row.version}",
    }
    try:
        response = requests.post(
            row.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException as exc:
        return f"network error: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def run_once(now: datetime | None = None, *, limit: int = 50) -> CallbackReport:
    """Send every status callback that is due (inside an app context); returns what happened."""
    now = now or utcnow()
    sent = retried = failed = 0
    for row_id in _claim(now, limit):
        row = db.session.get(CallbackDelivery, row_id)
        if row is None:
            continue
        transfer = db.session.get(Transfer, row.transfer_id)
        agent = db.session.get(Agent, transfer.agent_id) if transfer else None
        error = "agent no longer exists" if agent is None else _post(row, agent.signing_secret)
        row = db.session.get(CallbackDelivery, row_id)
        assert row is not None
        row.claimed_until = None
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), None
            sent += 1
        elif now - row.created_at >= GIVE_UP_AFTER or agent is None:
            row.status, row.last_error = "failed", mask_numbers(error)[:200]
            failed += 1
            logger.warning("status callback %s for %s given up: %s", row.id, row.transfer_id, error)
        else:
            row.status, row.last_error = "queued", mask_numbers(error)[:200]
            row.next_attempt_at = now + retry_delay(row.attempts)
            retried += 1
            logger.info(
                "status callback %s for %s failed (%s); retrying", row.id, row.transfer_id, error
            )
        db.session.commit()
    return CallbackReport(sent, retried, failed)
