"""The outbox worker: claim due SMS rows, send them, record the outcome with retry and backoff.

A row is marked ``sending`` and committed before Twilio is called, so a crash mid-send leaves a
visible trace instead of a silent duplicate. Delivery is at most once: a row found still
``sending`` after its claim expired is failed for a person to look at, never resent.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..masking import mask, mask_numbers
from ..models import Account, utcnow
from ..twilio.adapter import TwilioApiError
from .models import OutboxMessage
from .quiet_hours import Window, next_allowed
from .sms import SmsSender

logger = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=60)
MAX_RETRY_GAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
# How long a claim lasts before the row counts as abandoned by a crashed worker.
CLAIM_FOR = timedelta(minutes=5)
# Worst case for one send: TwilioRest's 15 s request timeout plus slack.
SEND_BUDGET = timedelta(seconds=20)
# After a 429 the rest of the batch waits this long; Twilio never processed the refused request.
RATE_LIMIT_PAUSE = timedelta(seconds=30)

NOT_A_MOBILE = 21614  # Twilio: "To" number is not a valid mobile number

STALE_ERROR = "worker stopped while sending; not resent because the text may already have gone"


@dataclass(frozen=True)
class WorkerReport:
    """What one pass did.

    ``sent``; ``retried`` (failed, due again later); ``failed`` (given up, refused, or left
    ``sending`` by a stopped worker); ``held`` (postponed without an attempt: quiet hours or a
    Twilio rate-limit pause); ``dropped`` (reminder for a bill already paid).
    """

    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    dropped: int = 0

    @property
    def total(self) -> int:
        """Rows this pass touched."""
        return self.sent + self.retried + self.failed + self.held + self.dropped


def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 60 s, doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY_GAP)


def claim_due(session: Session, now: datetime, *, limit: int) -> list[OutboxMessage]:
    """Lock and return queued rows due by ``now``; rows another worker has locked are skipped."""
    query = (
        sa.select(OutboxMessage)
        .where(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        # PostgreSQL: FOR UPDATE SKIP LOCKED. SQLite has no row locks and renders nothing;
        # there the compare-and-set in _mark_sending keeps two workers off the same row.
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def _fail_stale_claims(session: Session, now: datetime) -> int:
    query = (
        sa.select(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.scalars(query))
    for row in rows:
        row.status = "failed"
        row.last_error = STALE_ERROR
        row.claimed_until = None
        logger.error(
            "outbox %s (%s to %s) was left sending by a stopped worker; marked failed, not resent",
            row.id,
            row.kind,
            mask(row.to_number),
            extra={"outbox_id": row.id, "to": mask(row.to_number)},
        )
    session.commit()
    return len(rows)


def _bill_paid(session: Session, row: OutboxMessage) -> bool:
    if row.kind != "reminder" or row.account_id is None:
        return False
    account = session.get(Account, row.account_id, populate_existing=True)
    return account is not None and account.balance_cents <= 0


def _record_failure(row: OutboxMessage, error: TwilioApiError, now: datetime) -> str:
    """Apply a failed send to ``row``; return ``"retried"`` or ``"failed"``."""
    row.claimed_until = None
    row.error_code = error.code
    row.last_error = mask_numbers(error.message)[:200]
    row.attempts += 1
    if error.permanent:
        row.status = "failed"
        return "failed"
    deadline = row.created_at + GIVE_UP_AFTER
    if now >= deadline:
        row.status = "failed"
        row.last_error = ("gave up after 24 hours: " + row.last_error)[:200]
        return "failed"
    row.status = "queued"
    # The last try lands on the deadline itself, so a message is never given up early.
    row.next_attempt_at = min(now + retry_delay(row.attempts), deadline)
    return "retried"


class _Pacer:
    """Space sends at most ``rate_per_second`` apart."""

    def __init__(
        self,
        rate_per_second: float | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.gap = 1.0 / rate_per_second if rate_per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None

    def wait(self) -> None:
        if self.gap and self.last is not None:
            remaining = self.gap - (self.clock() - self.last)
            if remaining > 0:
                self.sleep(remaining)
        self.last = self.clock()


def run_once(
    session: Session,
    sender: SmsSender,
    *,
    now: datetime | None = None,
    default_tz: str = "America/New_York",
    limit: int = 100,
    rate_per_second: float | None = None,
    state_windows: Mapping[str, Window] | None = None,
    window: Window = (8, 21),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkerReport:
    """Send what is due in the outbox once and report what happened."""
    now = now or utcnow()
    counts = dict.fromkeys(("sent", "retried", "failed", "held", "dropped"), 0)
    counts["failed"] += _fail_stale_claims(session, now)

    # One transaction decides every due row and claims the ones to send; the commit releases
    # the row locks with the rows already marked, so no other worker can pick them up.
    to_send: list[OutboxMessage] = []
    # Long enough for the whole batch at its slowest (paced, every request timing out), so a
    # slow but live worker is never taken for a dead one.
    gap = 1.0 / rate_per_second if rate_per_second else 0.0
    claim_until = now + CLAIM_FOR + limit * (SEND_BUDGET + timedelta(seconds=gap))
    for row in claim_due(session, now, limit=limit):
        if _bill_paid(session, row):
            row.status = "dropped"
            row.last_error = "bill paid before the reminder went out"
            counts["dropped"] += 1
            logger.info("outbox %s: reminder to %s dropped, bill paid", row.id, mask(row.to_number))
            continue
        if row.respect_quiet_hours:
            opens = next_allowed(
                row.to_number,
                now,
                default_tz=default_tz,
                window=window,
                state_windows=state_windows,
            )
            if opens is not None:
                row.next_attempt_at = opens
                counts["held"] += 1
                logger.info(
                    "outbox %s to %s held for quiet hours until %s",
                    row.id,
                    mask(row.to_number),
                    opens.isoformat(),
                )
                continue
        if _mark_sending(session, row, claim_until):
            to_send.append(row)
    session.commit()

    pacer = _Pacer(rate_per_second, clock, sleep)
    for index, row in enumerate(to_send):
        pacer.wait()
        outcome = _send_one(session, sender, row, now)
        if outcome == "rate_limited":
            counts["retried"] += 1
            counts["held"] += _release(session, to_send[index + 1 :], now + RATE_LIMIT_PAUSE)
            break
        counts[outcome] += 1
    return WorkerReport(**counts)


def _mark_sending(session: Session, row: OutboxMessage, claim_until: datetime) -> bool:
    """Claim ``row`` if still queued (compare-and-set: two SQLite workers cannot both win)."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.status == "queued")
        .values(status="sending", claimed_until=claim_until)
    )
    return result.rowcount == 1


def _send_one(session: Session, sender: SmsSender, row: OutboxMessage, now: datetime) -> str:
    """Send one claimed row and commit its outcome; return the report bucket it falls in."""
    to = mask(row.to_number)
    try:
        result = sender.send(row.to_number, row.body)
    except TwilioApiError as error:
        outcome = _record_failure(row, error, now)
        _receipt_to_phone_on_file(session, row, error, now)
        session.commit()
        log = logger.warning if outcome == "retried" else logger.error
        log(
            "outbox %s to %s: %s (code %s, attempt %s) -> %s",
            row.id,
            to,
            row.last_error,
            error.code,
            row.attempts,
            outcome,
            extra={"outbox_id": row.id, "to": to, "error_code": error.code},
        )
        return "rate_limited" if outcome == "retried" and error.rate_limited else outcome
    except Exception as error:
        # Not a Twilio refusal: we cannot tell whether the text went, so (as with a crashed
        # worker) fail it for a person to check rather than risk a duplicate.
        row.status = "failed"
        row.claimed_until = None
        row.last_error = f"unexpected error while sending: {type(error).__name__}"
        session.commit()
        logger.exception("outbox %s to %s: unexpected error while sending", row.id, to)
        return "failed"
    row.status = "sent"
    row.sent_at = now
    row.provider_sid = result.sid
    row.claimed_until = None
    row.last_error = None
    row.error_code = None
    session.commit()
    logger.info("outbox %s (%s) sent to %s as %s", row.id, row.kind, to, result.sid)
    return "sent"


def _receipt_to_phone_on_file(
    session: Session, row: OutboxMessage, error: TwilioApiError, now: datetime
) -> None:
    """A receipt refused because the calling number is not a mobile goes once to the phone on file.

    US numbers cannot be told apart as mobile or landline offline, so the caller's number is tried
    first; Twilio's 21614 is the answer that it cannot take texts.
    """
    if row.kind != "receipt" or error.code != NOT_A_MOBILE or row.account_id is None:
        return
    account = session.get(Account, row.account_id)
    if account is None or not account.phone or account.phone == row.to_number:
        return
    try:
        with session.begin_nested():
            session.add(
                OutboxMessage(
                    dedupe_key=f"{row.dedupe_key}:phone-on-file",
                    kind="receipt",
                    to_number=account.phone,
                    body=row.body,
                    account_id=row.account_id,
                    payment_id=row.payment_id,
                    respect_quiet_hours=False,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    except IntegrityError:
        return  # already re-queued by an earlier pass
    logger.info("outbox %s: %s is not a mobile; receipt queued for the phone on file %s",
                row.id, mask(row.to_number), mask(account.phone))


def _release(session: Session, rows: list[OutboxMessage], at: datetime) -> int:
    """Put claimed-but-unsent rows back in the queue (no attempt counted) for ``at``."""
    for row in rows:
        row.status = "queued"
        row.claimed_until = None
        row.next_attempt_at = max(row.next_attempt_at, at)
    session.commit()
    if rows:
        logger.warning("Twilio rate limit: %s texts postponed until %s", len(rows), at.isoformat())
    return len(rows)


def run_forever(
    make_session: Callable[[], Session],
    sender: SmsSender,
    *,
    poll_seconds: float = 2.0,
    stop_event: threading.Event | None = None,
    also: Callable[[], Any] | None = None,
    **kw: Any,
) -> None:
    """Run ``run_once`` until ``stop_event`` is set, pausing ``poll_seconds`` when idle.

    ``also`` runs after every pass (the agents' status callbacks share the worker's loop).
    """
    stop = stop_event or threading.Event()
    limit = kw.get("limit", 100)
    while not stop.is_set():
        try:
            with make_session() as session:
                report = run_once(session, sender, **kw)
        except Exception:
            # A database outage must not kill the worker; try again after the pause.
            logger.exception("outbox pass failed")
            report = WorkerReport()
        if also is not None:
            try:
                also()
            except Exception:
                logger.exception("extra worker pass failed")
        if report.total:
            logger.info("outbox pass: %s", report)
        # A full batch means more may be waiting: go again at once.
        if report.total < limit:
            stop.wait(poll_seconds)
