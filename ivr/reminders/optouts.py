"""Reminder consent per phone number: STOP opts a number out, START opts it back in."""

import sqlalchemy as sa

from ..extensions import db
from . import clock
from .models import SmsOptOut


def set_opted_out(phone: str, opted_out: bool, keyword: str) -> None:
    """Record that ``phone`` opted out (or back in) with ``keyword``; the caller commits.

    Opting back in needs no other bookkeeping: bills skipped while opted out have no
    ``Reminder`` row, so the next run reminds the current bill if it is still in its window.
    """
    row = db.session.scalar(sa.select(SmsOptOut).where(SmsOptOut.phone == phone).with_for_update())
    if row is None:
        if not opted_out:
            return  # never opted out: nothing to undo
        row = SmsOptOut(phone=phone, opted_out=True, keyword=keyword, changed_at=clock.now())
        try:
            with db.session.begin_nested():
                db.session.add(row)
            return
        except sa.exc.IntegrityError:  # the same STOP delivered twice at once
            row = db.session.scalar(sa.select(SmsOptOut).where(SmsOptOut.phone == phone))
            assert row is not None
    row.opted_out = opted_out
    row.keyword = keyword[:20]
    row.changed_at = clock.now()


def is_opted_out(phone: str) -> bool:
    """True when ``phone`` has opted out of reminders."""
    return bool(
        db.session.scalar(
            sa.select(SmsOptOut.opted_out).where(
                SmsOptOut.phone == phone, SmsOptOut.opted_out.is_(True)
            )
        )
    )
