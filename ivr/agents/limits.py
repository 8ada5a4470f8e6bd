"""Rate limits kept in the database, so every server process counts against the same limit.

Fixed windows: a bucket such as ``agent:3:pay`` gets one counter row per window. The increment is
one SQL ``UPDATE … SET count = count + 1``, so concurrent requests never lose a count.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import utcnow
from .models import RateCounter

# name -> (config key for the count, window in seconds, default count)
LIMITS = {
    "pay": ("AGENT_PAYMENTS_PER_MINUTE", 60, 20),  # transfers and assisted sessions started
    "lookup": ("AGENT_LOOKUPS_PER_MINUTE", 60, 60),  # account look-ups
    "action": ("AGENT_ACTIONS_PER_MINUTE", 60, 120),  # assisted capture / complete / cancel
    "read": ("AGENT_READS_PER_MINUTE", 60, 600),  # progress polling
    "login": ("AGENT_LOGIN_FAILURES_PER_10_MINUTES", 600, 10),  # failed console logins
}


@dataclass(frozen=True)
class Verdict:
    """Whether the request may go on, and when to try again if not."""

    allowed: bool
    retry_after: int = 0


def _window(now: datetime, seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


def _limit(name: str) -> tuple[int, int]:
    config_key, seconds, default = LIMITS[name]
    return int(current_app.config.get(config_key) or default), seconds


def _count(bucket: str, start: datetime) -> int:
    return int(
        db.session.scalar(
            sa.select(RateCounter.count).where(
                RateCounter.bucket == bucket, RateCounter.window_start == start
            )
        )
        or 0
    )


def hit(name: str, subject: str, now: datetime | None = None) -> Verdict:
    """Count one request for ``subject`` (e.g. ``agent:3``) against limit ``name``; commits."""
    now = now or utcnow()
    limit, seconds = _limit(name)
    bucket = f"{subject}:{name}"
    start = _window(now, seconds)
    bump = (
        sa.update(RateCounter)
        .where(RateCounter.bucket == bucket, RateCounter.window_start == start)
        .values(count=RateCounter.count + 1)
        .execution_options(synchronize_session=False)
    )
    if db.session.execute(bump).rowcount == 0:
        try:
            with db.session.begin_nested():
                db.session.add(RateCounter(bucket=bucket, window_start=start, count=1))
        except IntegrityError:  # another process opened the window a moment ago
            db.session.execute(bump)
        # Old windows are of no use: drop this bucket's so the table stays small.
        db.session.execute(
            sa.delete(RateCounter)
            .where(
                RateCounter.bucket == bucket, RateCounter.window_start < start - timedelta(days=1)
            )
            .execution_options(synchronize_session=False)
        )
    count = _count(bucket, start)
    db.session.commit()
    if count > limit:
        return Verdict(False, _retry_after(now, start, seconds))
    return Verdict(True)


def peek(name: str, subject: str, now: datetime | None = None) -> Verdict:
    """Whether ``subject`` is already over limit ``name`` (counts nothing)."""
    now = now or utcnow()
    limit, seconds = _limit(name)
    start = _window(now, seconds)
    if _count(f"{subject}:{name}", start) >= limit:
        return Verdict(False, _retry_after(now, start, seconds))
    return Verdict(True)


def _retry_after(now: datetime, start: datetime, seconds: int) -> int:
    return max(1, int((start + timedelta(seconds=seconds) - now).total_seconds()) + 1)
