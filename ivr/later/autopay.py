"""Autopay enrolment: on with the card on file and the consent heard, off at any time.

Nothing here commits: a call changes autopay in the same transaction as the call's answer. Which
bills autopay pays, and the charging, are ``ivr.later.worker``'s.
"""

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..money.saved_cards import saved_card_of
from .models import AutopayEnrollment

logger = logging.getLogger(__name__)


class NoCardOnFile(Exception):
    """Autopay needs the account's card on file, and it has none."""


def enrollment_of(account_id: int) -> AutopayEnrollment | None:
    """The account's autopay row (on or off), or None if it never enrolled."""
    return db.session.scalar(sa.select(AutopayEnrollment).where(AutopayEnrollment.account_id == account_id))


def is_on(account_id: int) -> bool:
    """Autopay is on for the account."""
    row = enrollment_of(account_id)
    return row is not None and row.active


def enrol(account: Account, *, words: str, language: str, call_sid: str | None, now: datetime,
          channel: str = "ivr") -> AutopayEnrollment:
    """Turn autopay on, recording the consent (the words agreed to, as heard); the caller commits.

    Enrolling again (after stopping, or twice) replaces the consent; autopay then pays the bills
    due two days or more after this moment.

    :raises NoCardOnFile: the account has no card on file.
    """
    if saved_card_of(account.id) is None:
        raise NoCardOnFile(account.account_number)
    values = {
        "active": True,
        "enrolled_at": now,
        "consent_channel": channel,
        "consent_call_sid": call_sid,
        "consent_language": language,
        "consent_words": words,
        "cancelled_at": None,
        "cancelled_by": None,
    }
    row = enrollment_of(account.id)
    if row is None:
        row = AutopayEnrollment(account_id=account.id, **values)
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:  # enrolled by another call a moment ago: this consent replaces it
            row = enrollment_of(account.id)
            assert row is not None
    for name, value in values.items():
        setattr(row, name, value)
    db.session.flush()
    logger.info("autopay on for account %s (%s)", mask(account.account_number), channel)
    return row


def stop(account_id: int, *, by: str, now: datetime) -> bool:
    """Turn autopay off (``by``: ``member`` or ``staff:<name>``); False when it was not on. The caller commits.

    A bill already noticed is then not charged: the worker checks autopay at the charge.
    """
    changed = db.session.execute(
        sa.update(AutopayEnrollment)
        .where(AutopayEnrollment.account_id == account_id, AutopayEnrollment.active.is_(True))
        .values(active=False, cancelled_at=now, cancelled_by=by)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        logger.info("autopay off for account id %s by %s", account_id, by.split(":")[0])
    return changed == 1
