"""Caller identification: an account and one factor (the last four of the phone on file, the
service ZIP code, or the full account number on the caller-ID path), with a lockout.

An unknown account, a wrong last four and a locked account all answer False, so a caller can
never learn which account numbers exist.
"""

import hmac
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..masking import mask
from ..models import Account, VerificationFailure, utcnow
from .call_rows import ACCOUNT_VIEW_COLUMNS, DriverStatement, fetch

logger = logging.getLogger(__name__)

LOCK_THRESHOLD = 5  # failed verifications ...
LOCK_WINDOW = timedelta(minutes=15)  # ... within this window ...
LOCK_DURATION = timedelta(minutes=30)  # ... lock the account this long, from every caller ID


_ACCOUNTS = Account.__table__
_BY_NUMBER = DriverStatement(
    sa.select(*(_ACCOUNTS.c[name] for name in (*ACCOUNT_VIEW_COLUMNS, "phone"))).where(
        _ACCOUNTS.c.account_number == sa.bindparam("number")
    )
)
_FAILURES = VerificationFailure.__table__
_FAILURE_TIMES = DriverStatement(
    sa.select(_FAILURES.c.created_at)
    .where(_FAILURES.c.account_id == sa.bindparam("account_id"), _FAILURES.c.created_at >= sa.bindparam("since"))
    .order_by(_FAILURES.c.created_at)
)


def locked_until(account_id: int | None, now: datetime) -> datetime | None:
    """When the account's lock ends, or None if it is not locked at ``now`` (or there is no account)."""
    since = now - LOCK_WINDOW - LOCK_DURATION
    times = [row["created_at"] for row in fetch(_FAILURE_TIMES, {"account_id": account_id, "since": since})]
    until = None
    for i in range(LOCK_THRESHOLD - 1, len(times)):
        if times[i] - times[i - LOCK_THRESHOLD + 1] <= LOCK_WINDOW:
            until = times[i] + LOCK_DURATION
    return until if until and until > now else None


FACTORS = ("last4", "zip", "account")


def _on_file(account: Mapping[str, Any] | None, factor: str) -> bytes:
    """What the caller's answer must equal; for no account (or no ZIP on file) bytes no keyed
    digits can match, so a miss costs the same comparison either way."""
    if account is None:
        return b"\xff" * 4
    value = {"last4": account["phone"][-4:], "zip": account["zip"], "account": account["account_number"]}[factor]
    return value.encode() if value else b"\xff" * 4


def verify(account_number: str, answer: str, call_sid: str, now: datetime | None = None,
           factor: str = "last4") -> Mapping[str, Any] | None:
    """The account (a row of ``ACCOUNT_VIEW_COLUMNS`` and its phone) when ``answer`` matches its
    ``factor`` (``FACTORS``) and it is not locked; otherwise record the failure and None.

    Every failure does the same work, whichever part was wrong and whichever factor was asked:
    read the account, read its failures, write one failure (in the session's transaction,
    committed with the call's answer). An unknown number answering sooner than a wrong factor
    would tell a caller which account numbers exist.
    """
    if factor not in FACTORS:
        raise ValueError(f"no identification factor {factor!r}")
    now = now or utcnow()
    found = fetch(_BY_NUMBER, {"number": account_number})
    account = found[0] if found else None
    # Bytes, so any text compares (compare_digest refuses non-ASCII str), in constant time.
    matches = hmac.compare_digest(_on_file(account, factor), answer.encode()) and account is not None
    # Count the attempt before deciding, so a run of guesses locks even while already locked.
    locked = locked_until(account["id"] if account else None, now) is not None
    if matches and not locked:
        return account
    db.session.add(VerificationFailure(account_id=account["id"] if account else None, call_sid=call_sid, created_at=now))
    db.session.flush()
    reason = "no such account" if account is None else ("locked" if matches else f"wrong {factor}")
    logger.info("identification failed for account %s (%s)", mask(account_number), reason)
    return None
