"""The one outbox engine: claim due rows, deliver each through its kind's transport, record the
outcome with backoff, give up in time, and settle rows a stopped worker left ``sending``.

A kind of outbox row (texts, agents' status callbacks) is a table with the ``OutboxRow`` columns,
a ``Policy`` (retry schedule, at most or at least once, quiet hours, pacing, a pass budget) and a
``Transport`` that delivers one row. One pass over a kind:

1. settles rows whose claim expired while ``sending``: at least once, queued again; at most once,
   the transport asks the provider whether it has the row (texts: Twilio's Messages list) and the
   row is recorded sent or sent again accordingly (asked again later if the provider cannot answer;
   a transport that cannot ask fails the row for a person to check);
2. locks the due rows (PostgreSQL ``FOR UPDATE SKIP LOCKED``), drops those no longer wanted, holds
   those quiet hours keep back, and marks the rest ``sending``, all in one commit before anything
   is delivered, so a crash mid-delivery leaves a visible trace instead of a silent duplicate;
3. delivers them one by one, paced, committing each outcome, until the batch or the pass budget
   ends or the provider asks us to slow down.
"""

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..masking import mask_numbers
from ..models import utcnow
from ..monitoring import metrics
from ..terminal import problems
from .models import OutboxRow
from .quiet_hours import QuietHours

logger = logging.getLogger(__name__)

STALE_ERROR = "worker stopped while sending; not resent because it may already have gone"
STALE_UNRESOLVED = "worker stopped while sending and the provider could not say whether it went"


class Fate(enum.Enum):
    """What the provider says of a row a stopped worker left ``sending``."""

    WENT = "went"  # the provider has it: record it sent, never send it again
    DID_NOT_GO = "did not go"  # the provider never got it: send it now
    UNKNOWN = "unknown"  # the provider could not be asked: ask again in a later pass


class Delivery(enum.Enum):
    """What becomes of a row whose delivery may or may not have happened (a stopped worker, an
    unexpected error)."""

    AT_MOST_ONCE = "at most once"  # failed, for a person to check: a duplicate would do harm
    AT_LEAST_ONCE = "at least once"  # delivered again: the receiver drops duplicates


@dataclass(frozen=True)
class Policy:
    """How one kind of outbox row is retried, held back and paced."""

    first_retry: timedelta
    max_retry_gap: timedelta
    give_up_after: timedelta  # counted from the row's creation
    delivery: Delivery
    # How long a claim outlives the slowest possible pass before the row counts as abandoned.
    claim_for: timedelta
    # The worst case for one delivery: the transport's timeouts plus slack.
    send_budget: timedelta
    rate_per_second: float | None = None
    # No delivery is begun this many seconds into a pass; the rest wait for the next pass.
    pass_budget_seconds: float | None = None
    # After a "too many requests" the rest of the batch waits this long (the refused one backs off).
    slow_down_pause: timedelta = timedelta(seconds=30)
    # Holds back rows whose ``quiet_hours_phone()`` names a number, until its window opens.
    quiet_hours: QuietHours | None = None
    # Why a due row need not go any more (a reminder for a bill paid meanwhile), else None.
    obsolete: Callable[[Session, Any], str | None] | None = None

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: ``first_retry``, doubling, at most ``max_retry_gap``."""
        return min(self.first_retry * 2 ** max(attempts - 1, 0), self.max_retry_gap)

    def claim_until(self, now: datetime, rows: int) -> datetime:
        """When a claim on ``rows`` rows made at ``now`` expires: after the slowest pass over them.

        Long enough for the whole batch at its slowest (paced, every delivery timing out), so a
        slow but live worker is never taken for a dead one.
        """
        gap = timedelta(seconds=1 / self.rate_per_second) if self.rate_per_second else timedelta(0)
        slowest = rows * (self.send_budget + gap)
        if self.pass_budget_seconds is not None:
            slowest = min(slowest, timedelta(seconds=self.pass_budget_seconds) + self.send_budget + gap)
        return now + self.claim_for + slowest


@dataclass(frozen=True)
class Failure:
    """Why one delivery did not happen."""

    error: str  # stored on the row (numbers masked) as ``last_error``
    code: int | None = None  # the provider's error code, for the log
    permanent: bool = False  # trying again cannot help
    slow_down: bool = False  # the provider refused for rate: the rest of the batch waits


class Transport(Protocol):
    """Delivers one claimed row of its kind."""

    def describe(self, row: Any) -> str:
        """The row as logs name it, numbers masked (``text 12 (receipt) to …0123``)."""
        ...

    def deliver(self, session: Session, row: Any, now: datetime) -> Failure | None:
        """Deliver ``row``; None when it went. It may set its kind's own columns; the engine commits."""
        ...


class AsksProvider(Protocol):
    """A transport that can ask its provider whether a row of unknown fate went (optional)."""

    def fate(self, session: Session, row: Any, now: datetime) -> Fate:
        """Whether the provider has ``row``; on WENT it records the provider's id on the row."""
        ...


@dataclass(frozen=True)
class Kind:
    """One kind of outbox row: its table, its policy and its transport."""

    model: type[OutboxRow]
    policy: Policy
    transport: Transport


@dataclass(frozen=True)
class Report:
    """What one pass did.

    ``sent``; ``retried`` (failed, due again later); ``failed`` (given up, refused, or of unknown
    fate when delivery is at most once); ``held`` (postponed without an attempt: quiet hours or a
    rate-limit pause); ``dropped`` (no longer wanted, e.g. a reminder for a bill already paid).
    """

    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    dropped: int = 0
    # More may be due right now (a full batch, or the pass budget ran out): go again without a pause.
    more_due: bool = field(default=False, compare=False, repr=False)

    @property
    def total(self) -> int:
        """Rows this pass touched."""
        return self.sent + self.retried + self.failed + self.held + self.dropped

    def __str__(self) -> str:
        """``3 sent, 2 held for later``: how the worker's log lines give a pass."""
        from ..terminal.words import pass_summary

        return pass_summary(self)


def lock_due(session: Session, model: type[OutboxRow], now: datetime, *, limit: int) -> list[Any]:
    """Lock and return queued rows due by ``now``; rows another worker has locked are skipped."""
    query = (
        sa.select(model)
        .where(model.status == "queued", model.next_attempt_at <= now)
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        # PostgreSQL: FOR UPDATE SKIP LOCKED. SQLite has no row locks and renders nothing;
        # there the compare-and-set in _mark_sending keeps two workers off the same row.
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def run_once(
    session: Session,
    kind: Kind,
    *,
    now: datetime | None = None,
    limit: int = 100,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Deliver what ``kind`` has due once and report what happened."""
    now = now or utcnow()
    started = clock()
    policy = kind.policy
    counts = dict.fromkeys(("sent", "retried", "failed", "held", "dropped"), 0)
    _settle_stale(session, kind, now, counts)
    batch, more_due = _claim(session, kind, now, limit, counts)

    pacer = _Pacer(policy.rate_per_second, clock, sleep)
    for index, row in enumerate(batch):
        if policy.pass_budget_seconds is not None and clock() - started >= policy.pass_budget_seconds:
            _release(session, batch[index:], until=None)  # untouched: due again in the next pass
            more_due = True
            break
        pacer.wait()
        outcome = _deliver(session, kind, row, now)
        if outcome == "slow down":
            counts["retried"] += 1
            rest = batch[index + 1 :]
            counts["held"] += _release(session, rest, until=now + policy.slow_down_pause)
            if rest:
                logger.warning(
                    "rate limited: %s more postponed until %s",
                    len(rest),
                    (now + policy.slow_down_pause).isoformat(),
                )
            break
        counts[outcome] += 1
    return Report(**counts, more_due=more_due)


def _settle_stale(session: Session, kind: Kind, now: datetime, counts: dict[str, int]) -> None:
    """Settle rows left ``sending`` past their claim by a stopped worker, counting them in ``counts``."""
    model = kind.model
    query = (
        sa.select(model)
        .where(model.status == "sending", model.claimed_until < now)
        .with_for_update(skip_locked=True)
    )
    ask = getattr(kind.transport, "fate", None)
    for row in list(session.scalars(query)):
        name = kind.transport.describe(row)
        extra = {"outbox_id": row.id}
        if kind.policy.delivery is Delivery.AT_LEAST_ONCE:
            _stale_tried(row, "queued")
            logger.warning("%s was left sending by a stopped worker; queued again", name, extra=extra)
            continue
        if ask is None:
            _stale_tried(row, "failed", STALE_ERROR)
            counts["failed"] += 1
            logger.error("%s was left sending by a stopped worker; marked failed, not resent", name, extra=extra)
            continue
        # At most once, and the provider can tell: neither lost nor sent twice.
        fate = ask(session, row, now)
        if fate is Fate.WENT:
            _stale_tried(row, "sent")
            row.sent_at = now
            counts["sent"] += 1
            logger.warning("%s was left sending by a stopped worker; the provider has it: sent", name, extra=extra)
        elif fate is Fate.DID_NOT_GO:
            _stale_tried(row, "queued")
            row.next_attempt_at = now
            logger.warning("%s was left sending by a stopped worker; the provider never got it: "
                           "sending it now", name, extra=extra)
        elif now >= row.created_at + kind.policy.give_up_after:
            _stale_tried(row, "failed", STALE_UNRESOLVED)
            counts["failed"] += 1
            logger.error("%s: %s; gave up", name, STALE_UNRESOLVED, extra=extra)
        else:
            # Still ``sending``, so no worker sends it; the next pass asks again.
            row.claimed_until = now + kind.policy.first_retry
            logger.warning("%s was left sending by a stopped worker; the provider could not be asked, "
                           "asking again later", name, extra=extra)
    session.commit()


def _stale_tried(row: Any, status: str, error: str | None = None) -> None:
    """Count the stopped worker's try and give the row its new status."""
    row.claimed_until = None
    row.attempts += 1
    row.status = status
    if error is not None:
        row.last_error = error


def _claim(
    session: Session, kind: Kind, now: datetime, limit: int, counts: dict[str, int]
) -> tuple[list[Any], bool]:
    """Decide every due row in one transaction; return the rows marked ``sending`` and whether the
    batch was full (more may be due)."""
    policy = kind.policy
    due = lock_due(session, kind.model, now, limit=limit)
    claim_until = policy.claim_until(now, len(due))
    to_deliver: list[Any] = []
    for row in due:
        reason = policy.obsolete(session, row) if policy.obsolete else None
        if reason is not None:
            row.status, row.last_error = "dropped", reason
            counts["dropped"] += 1
            logger.info("%s dropped: %s", kind.transport.describe(row), reason)
            continue
        opens = _quiet_hours_end(policy, row, now)
        if opens is not None:
            row.next_attempt_at = opens
            counts["held"] += 1
            logger.info(
                "%s held for quiet hours until %s", kind.transport.describe(row), opens.isoformat()
            )
            continue
        if _mark_sending(session, kind.model, row, claim_until):
            to_deliver.append(row)
    # The commit releases the row locks with the rows already marked, so no other worker takes them.
    session.commit()
    return to_deliver, len(due) == limit


def _quiet_hours_end(policy: Policy, row: Any, now: datetime) -> datetime | None:
    """When quiet hours stop holding ``row`` back, or None if it may go now."""
    if policy.quiet_hours is None:
        return None
    phone = row.quiet_hours_phone()
    return None if phone is None else policy.quiet_hours.opens(phone, now)


def _mark_sending(session: Session, model: type[OutboxRow], row: Any, claim_until: datetime) -> bool:
    """Claim ``row`` if still queued (compare-and-set: two SQLite workers cannot both win)."""
    result = session.execute(
        sa.update(model)
        .where(model.id == row.id, model.status == "queued")
        .values(status="sending", claimed_until=claim_until)
    )
    return result.rowcount == 1


def _deliver(session: Session, kind: Kind, row: Any, now: datetime) -> str:
    """Deliver one claimed row and commit its outcome; return its report bucket or ``"slow down"``."""
    name = kind.transport.describe(row)
    unexpected: Exception | None = None
    try:
        failure = kind.transport.deliver(session, row, now)
    except Exception as error:
        # Not a refusal the transport understood: whether it went is unknown, so the policy's
        # delivery guarantee decides between failing it and trying again.
        session.rollback()
        unexpected = error
        failure = Failure(
            f"unexpected error while sending: {type(error).__name__}",
            permanent=kind.policy.delivery is Delivery.AT_MOST_ONCE,
        )
    outcome = _record(kind.policy, row, failure, now)
    session.commit()
    extra = {"outbox_id": row.id}
    if failure is None:
        logger.info("%s sent", name, extra=extra)
        return outcome
    code = f" (code {failure.code})" if failure.code is not None else ""
    log = logger.warning if outcome == "retried" else logger.error
    log(
        "%s: %s%s, attempt %s -> %s",
        name,
        row.last_error,
        code,
        row.attempts,
        outcome,
        exc_info=unexpected,
        extra=extra | {"error_code": failure.code},
    )
    return "slow down" if outcome == "retried" and failure.slow_down else outcome


def _record(policy: Policy, row: Any, failure: Failure | None, now: datetime) -> str:
    """Apply one delivery's outcome to ``row``; return ``"sent"``, ``"retried"`` or ``"failed"``."""
    row.claimed_until = None
    row.attempts += 1
    if failure is None:
        row.status, row.sent_at, row.last_error = "sent", now, None
        return "sent"
    row.last_error = mask_numbers(failure.error)[:200]
    if failure.permanent:
        row.status = "failed"
        return "failed"
    deadline = row.created_at + policy.give_up_after
    if now >= deadline:
        row.status = "failed"
        hours = policy.give_up_after / timedelta(hours=1)
        row.last_error = (f"gave up after {hours:g} hours: " + row.last_error)[:200]
        return "failed"
    row.status = "queued"
    # The last try lands on the deadline itself, so a row is never given up early.
    row.next_attempt_at = min(now + policy.retry_delay(row.attempts), deadline)
    return "retried"


def _release(session: Session, rows: list[Any], *, until: datetime | None) -> int:
    """Put claimed but undelivered rows back in the queue (no attempt counted), due no sooner than ``until``."""
    for row in rows:
        row.status = "queued"
        row.claimed_until = None
        if until is not None:
            row.next_attempt_at = max(row.next_attempt_at, until)
    session.commit()
    return len(rows)


class _Pacer:
    """Space deliveries at most ``rate_per_second`` apart."""

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
        """Sleep until the next delivery may begin."""
        if self.gap and self.last is not None:
            remaining = self.gap - (self.clock() - self.last)
            if remaining > 0:
                self.sleep(remaining)
        self.last = self.clock()


def run_forever(
    passes: Mapping[str, Callable[[], Report]],
    *,
    poll_seconds: float = 2.0,
    stop_event: threading.Event | None = None,
    pause: Callable[[float], Any] | None = None,
) -> None:
    """Run every named pass in turn until ``stop_event`` is set, pausing ``poll_seconds`` between
    rounds unless a pass has more due.

    ``pause`` does the waiting (default: wait on ``stop_event``, so setting it ends the wait at once).
    """
    stop = stop_event or threading.Event()
    wait = pause or stop.wait
    failing: dict[str, int] = {}  # pass name -> rounds in a row it could not reach the database
    while not stop.is_set():
        more_due = False
        for name, run_pass in passes.items():
            try:
                report = run_pass()
            except sa.exc.DBAPIError as error:
                # A database outage must not end the worker, nor fill its log with tracebacks:
                # one line a round, and the next round tries again.
                failing[name] = failing.get(name, 0) + 1
                logger.error("outbox %s pass: %s; trying again", name, problems.one_line(error))
                metrics.worker_pass(name, "error")
                continue
            except Exception:
                # Anything else is a bug: its traceback is what finds it. The worker still goes on.
                logger.exception("outbox %s pass failed", name)
                metrics.worker_pass(name, "error")
                continue
            if failing.pop(name, 0):
                logger.warning("outbox %s pass: the database answers again", name)
            metrics.worker_pass(name, "ok")
            if report.total:
                logger.info("outbox %s pass: %s", name, report)
            more_due = more_due or report.more_due
        if not more_due:
            # While the database is away, wait longer each round (up to OUTAGE_MAX_PAUSE_S).
            wait(outage_pause(poll_seconds, max(failing.values())) if failing else poll_seconds)


OUTAGE_MAX_PAUSE_S = 30.0


def outage_pause(poll_seconds: float, rounds_failed: int) -> float:
    """The pause after ``rounds_failed`` rounds in a row without the database: doubling, at most 30 s."""
    return min(poll_seconds * 2 ** (rounds_failed - 1), max(OUTAGE_MAX_PAUSE_S, poll_seconds))
