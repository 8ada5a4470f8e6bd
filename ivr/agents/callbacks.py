"""Status callbacks to agents' systems, an outbox kind: queued inside the Twilio webhook's
transaction, POSTed later by the outbox engine (``ivr worker``, or ``ivr agents callbacks``).

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
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import utcnow
from ..outbox import engine
from .keys import sign_body
from .models import Agent, CallbackDelivery, Transfer

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_GAP = timedelta(minutes=10)
# Progress of a phone call is worthless a few hours later: stop trying then.
GIVE_UP_AFTER = timedelta(hours=2)
CLAIM_FOR = timedelta(minutes=2)
TIMEOUT_SECONDS = 5  # per POST (connect, and each read)
# Worst case for one POST: the host lookup, the connection and the answer.
SEND_BUDGET = timedelta(seconds=3 * TIMEOUT_SECONDS)
PASS_BUDGET_SECONDS = 10  # no new POST is begun after this long; a pass ends within ~15 s


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


def policy(*, budget_seconds: float = PASS_BUDGET_SECONDS) -> engine.Policy:
    """Status callbacks' policy: at least once (receivers dedupe on ``X-IVR-Event-Id``), bounded passes."""
    return engine.Policy(
        first_retry=FIRST_RETRY,
        max_retry_gap=MAX_RETRY_GAP,
        give_up_after=GIVE_UP_AFTER,
        delivery=engine.Delivery.AT_LEAST_ONCE,
        claim_for=CLAIM_FOR,
        send_budget=SEND_BUDGET,
        pass_budget_seconds=budget_seconds,
    )


class Refused(Exception):
    """The callback's URL must not be called at all (retrying cannot help)."""


def _check_destination(url: str) -> None:
    """Refuse a host that resolves (now) to any address that is not global.

    :raises Refused: a loopback, private, link-local or otherwise non-public address.
    :raises OSError: the name did not resolve (a network problem: retried).
    """
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


class CallbackTransport:
    """POSTs one status callback, signed with its agent's secret."""

    def __init__(self, *, production: bool) -> None:
        # Development may call a receiver on this machine; production only public addresses.
        self.production = production

    def describe(self, row: CallbackDelivery) -> str:
        """``status callback 7 for tr_…``."""
        return f"status callback {row.id} for {row.transfer_id}"

    def deliver(self, session: Session, row: CallbackDelivery, now: datetime) -> engine.Failure | None:
        """POST the row's body to its URL; a 2xx is delivered, anything else a failure."""
        transfer = session.get(Transfer, row.transfer_id)
        agent = session.get(Agent, transfer.agent_id) if transfer else None
        if agent is None:
            return engine.Failure("agent no longer exists", permanent=True)
        try:
            if self.production:
                _check_destination(row.url)
        except Refused as refused:
            return engine.Failure(str(refused), permanent=True)
        except (OSError, UnicodeError) as exc:
            return engine.Failure(f"network error: host lookup failed ({type(exc).__name__})")
        body = row.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coop-ivr-agent-callbacks/1",
            "X-IVR-Signature": sign_body(agent.signing_secret, body),
            "X-IVR-Event-Id": f"{row.transfer_id}.{row.version}",
        }
        try:
            response = requests.post(
                row.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
        except requests.RequestException as exc:
            return engine.Failure(f"network error: {type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return None
        return engine.Failure(f"HTTP {response.status_code}")


def kind(config: Mapping[str, Any], *, budget_seconds: float = PASS_BUDGET_SECONDS) -> engine.Kind:
    """Status callbacks as the engine runs them, with the app's settings."""
    transport = CallbackTransport(production=bool(config.get("PRODUCTION")))
    return engine.Kind(CallbackDelivery, policy(budget_seconds=budget_seconds), transport)


def run_once(
    now: datetime | None = None,
    *,
    limit: int = 50,
    budget_seconds: float = PASS_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> engine.Report:
    """Send the status callbacks that are due (inside an app context); returns what happened.

    No POST is begun after ``budget_seconds``: a slow receiver delays this pass by at most about
    one request's timeout beyond the budget. Rows not reached stay queued.
    """
    return engine.run_once(
        db.session, kind(current_app.config, budget_seconds=budget_seconds), now=now, limit=limit, clock=clock
    )


def run_pass() -> engine.Report:
    """One bounded pass with fresh rows (``ivr worker`` and ``ivr agents callbacks`` run it; app context)."""
    try:
        return run_once()
    finally:
        db.session.remove()  # each pass starts from fresh rows, never a stale identity map
