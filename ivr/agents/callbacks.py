"""Status callbacks to agents' systems, through an outbox: queued inside the Twilio webhook's
transaction, POSTed later by ``run_once`` (called from ``ivr worker`` or ``ivr agents callbacks``).

Each POST carries the transfer's JSON (as ``GET /api/agent/transfers/<id>`` shows it) with
``X-IVR-Signature: sha256=<HMAC-SHA256(signing secret, body)>`` and
``X-IVR-Event-Id: <id>.<version>``.
Delivery is at least once; a newer change supersedes an older one still waiting.

A pass is bounded (``PASS_BUDGET_SECONDS``, ``TIMEOUT_SECONDS`` per request): ``ivr worker`` sends
SMS receipts in the same loop, and a silent agent URL must not hold them up. Rows a pass did not
reach wait for the next one.

In production the URL's host is resolved again just before each POST; if any of its addresses is
not public (loopback, private, link-local, ...) nothing is sent and the delivery fails for good,
so an agent key cannot make this server POST into the co-op's own network through DNS.
"""

import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import current_app

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
TIMEOUT_SECONDS = 5  # per POST (connect, and each read)
PASS_BUDGET_SECONDS = 10  # no new row is claimed after this long; a pass ends within ~15 s


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


def _take_back_stale_claims(now: datetime) -> None:
    # A claim left by a stopped process is taken back: the receiver dedupes on X-IVR-Event-Id.
    db.session.execute(
        sa.update(CallbackDelivery)
        .where(CallbackDelivery.status == "sending", CallbackDelivery.claimed_until < now)
        .values(status="queued")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _claim(now: datetime, limit: int) -> list[int]:
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


class Refused(Exception):
    """The callback's URL must not be called at all (retrying cannot help)."""


def _check_destination(url: str) -> None:
    """In production, refuse a host that resolves (now) to any address that is not global.

    :raises Refused: a loopback, private, link-local or otherwise non-public address.
    :raises OSError: the name did not resolve (a network problem: retried).
    """
    if not current_app.config.get("PRODUCTION"):
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} has no address")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            raise Refused(f"refused: {host} resolves to {address}, not a public address")


def _post(row: CallbackDelivery, secret: str) -> str | None:
    """POST one callback; None on a 2xx, else what went wrong.

    :raises Refused: the destination is not allowed (see ``_check_destination``); nothing is sent.
    """
    try:
        _check_destination(row.url)
    except (OSError, UnicodeError) as exc:
        return f"network error: host lookup failed ({type(exc).__name__})"
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


def run_once(
    now: datetime | None = None,
    *,
    limit: int = 50,
    budget_seconds: float = PASS_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> CallbackReport:
    """Send the status callbacks that are due (inside an app context); returns what happened.

    Rows are claimed one at a time, and none after ``budget_seconds``: a slow receiver delays
    this pass by at most about one request's timeout beyond the budget. Unclaimed rows stay queued.
    """
    now = now or utcnow()
    started = clock()
    sent = retried = failed = 0
    _take_back_stale_claims(now)
    for _ in range(limit):
        if clock() - started >= budget_seconds:
            break
        claimed = _claim(now, 1)
        if not claimed:
            break
        outcome = _deliver(claimed[0], now)
        sent += outcome == "sent"
        retried += outcome == "retried"
        failed += outcome == "failed"
    return CallbackReport(sent, retried, failed)


def _deliver(row_id: int, now: datetime) -> str:
    """POST one claimed row and record the outcome: ``sent``, ``retried``, ``failed`` (or ``gone``)."""
    row = db.session.get(CallbackDelivery, row_id)
    if row is None:
        return "gone"
    transfer = db.session.get(Transfer, row.transfer_id)
    agent = db.session.get(Agent, transfer.agent_id) if transfer else None
    permanent = agent is None
    if agent is None:
        error: str | None = "agent no longer exists"
    else:
        try:
            error = _post(row, agent.signing_secret)
        except Refused as refused:
            error, permanent = str(refused), True
    row = db.session.get(CallbackDelivery, row_id)
    assert row is not None
    row.claimed_until = None
    if error is None:
        row.status, row.sent_at, row.last_error = "sent", utcnow(), None
        outcome = "sent"
    elif permanent or now - row.created_at >= GIVE_UP_AFTER:
        row.status, row.last_error = "failed", mask_numbers(error)[:200]
        outcome = "failed"
        logger.warning("status callback %s for %s given up: %s", row.id, row.transfer_id, error)
    else:
        row.status, row.last_error = "queued", mask_numbers(error)[:200]
        row.next_attempt_at = now + retry_delay(row.attempts)
        outcome = "retried"
        logger.info(
            "status callback %s for %s failed (%s); retrying", row.id, row.transfer_id, error
        )
    db.session.commit()
    return outcome
