"""Caller identification: account number + last four of the phone on file, with a lockout.

An unknown account, a wrong last four and a locked account all answer False, so a caller can
never learn which account numbers exist.
"""

import hmac
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from .extensions import db
from .masking import mask
from .models import Account, VerificationFailure, utcnow

logger = logging.getLogger(__name__)

LOCK_THRESHOLD = 5  # failed verifications ...
LOCK_WINDOW = timedelta(minutes=15)  # ... within this window ...
LOCK_DURATION = timedelta(minutes=30)  # ... lock the account this long, from every caller ID


def locked_until(account_id: int, now: datetime) -> datetime | None:
    """When the account's lock ends, or None if it is not locked at ``now``."""
    since = now - LOCK_WINDOW - LOCK_DURATION
    times = db.session.scalars(
        sa.select(VerificationFailure.created_at)
        .where(VerificationFailure.account_id == account_id, VerificationFailure.created_at >= since)
        .order_by(VerificationFailure.created_at)
    ).all()
    until = None
    for i in range(LOCK_THRESHOLD - 1, len(times)):
        if times[i] - times[i - LOCK_THRESHOLD + 1] <= LOCK_WINDOW:
            until = times[i] + LOCK_DURATION
    return until if until and until > now else None


def verify(account_number: str, last4: str, call_sid: str, now: datetime | None = None) -> Account | None:
    """The account when the pair matches and it is not locked; otherwise record the failure and None."""
    now = now or utcnow()
    account = db.session.scalar(sa.select(Account).where(Account.account_number == account_number))
    if account is None:
        logger.info("identification failed: no account %s", mask(account_number))
        return None
    # Count the attempt before deciding, so a run of guesses locks even while already locked.
    matches = hmac.compare_digest(account.phone[-4:], last4)
    if matches and locked_until(account.id, now) is None:
        return account
    db.session.add(VerificationFailure(account_id=account.id, call_sid=call_sid, created_at=now))
    db.session.flush()
    logger.info(
        "identification failed for account %s (%s)",
        mask(account_number),
        "locked" if matches else "wrong last four",
    )
    return None
