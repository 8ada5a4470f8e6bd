"""Member-requested callbacks: the per-account limits, placing the call, and following its status.

A callback always dials the account's phone on file, copied when the call is requested. The
limits (one per account every 10 minutes, 5 in any 24 hours) count every call we asked Twilio to
place, answered or not; a request Twilio refused (``error``) does not count.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..twilio.adapter import TwilioApiError
from ..twilio.client import twilio_rest
from ..voice.twiml import url
from . import clock
from .models import Callback
from .settings import settings

logger = logging.getLogger(__name__)

DAY = timedelta(hours=24)
# A request recorded but never handed to Twilio (the process died) stops holding its slot.
STALE_QUEUED = timedelta(minutes=2)
# A call we heard nothing more about is no longer shown as "calling you now".
STALE_CALLING = timedelta(minutes=5)
RING_SECONDS = 30
LIVE = ("queued", "placing", "calling")
MACHINE_ANSWERS = (
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
)
NOT_REACHED_STATUSES = ("busy", "no-answer", "failed", "canceled")


@dataclass(frozen=True)
class Wait:
    """The member must wait: ``until`` (UTC) and why (``gap``: 10 minutes; ``daily``: 5 a day)."""

    until: datetime
    reason: str


def _counted(account_id: int, now: datetime, exclude: int | None = None) -> list[datetime]:
    stale = sa.and_(Callback.status == "queued", Callback.created_at < now - STALE_QUEUED)
    query = sa.select(Callback.created_at).where(
        Callback.account_id == account_id,
        Callback.created_at > now - DAY,
        Callback.status != "error",
        sa.not_(stale),
    )
    if exclude is not None:
        query = query.where(Callback.id != exclude)
    return sorted(db.session.scalars(query))


def wait_for(account_id: int, now: datetime, *, exclude: int | None = None) -> Wait | None:
    """When this account may next ask for a callback, or None if it may now."""
    cfg = settings()
    times = _counted(account_id, now, exclude)
    waits = []
    if times and times[-1] + cfg.callback_gap > now:
        waits.append(Wait(times[-1] + cfg.callback_gap, "gap"))
    if len(times) >= cfg.callback_daily_limit:
        waits.append(Wait(times[-cfg.callback_daily_limit] + DAY, "daily"))
    return max(waits, key=lambda w: w.until) if waits else None


def request(account: Account, *, source: str) -> Callback | Wait:
    """Record a callback request for ``account`` if its limits allow (the caller commits).

    The account row is locked first (PostgreSQL) and the new row written before counting
    (SQLite's write lock), so two requests at the same instant cannot both get through.
    """
    now = clock.now()
    db.session.execute(sa.select(Account.id).where(Account.id == account.id).with_for_update())
    row = Callback(
        account_id=account.id,
        to_number=account.phone,  # the phone on file: never a number from the request
        source=source,
        language=account.language,
        status="queued",
        created_at=now,
        updated_at=now,
    )
    db.session.add(row)
    db.session.flush()
    wait = wait_for(account.id, now, exclude=row.id)
    if wait is not None:
        db.session.delete(row)
        db.session.flush()
        logger.info(
            "callback for account %s refused until %s (%s)",
            mask(account.account_number),
            wait.until.isoformat(),
            wait.reason,
        )
        return wait
    return row


def place(callback_id: int) -> Callback:
    """Ask Twilio to call the member now (once, whoever else tries); commit; return the row."""
    now = clock.now()
    claimed = db.session.execute(
        sa.update(Callback)
        .where(Callback.id == callback_id, Callback.status == "queued")
        .values(status="placing", updated_at=now)
    ).rowcount
    db.session.commit()
    callback = db.session.get(Callback, callback_id, populate_existing=True)
    assert callback is not None
    if claimed != 1:
        return callback
    try:
        info = twilio_rest().create_call(
            callback.to_number,
            url("/twilio/voice/callback", c=callback.id),
            status_callback=url("/twilio/voice/callback/status", c=callback.id),
            status_callback_events=("initiated", "ringing", "answered", "completed"),
            timeout=RING_SECONDS,
            # Wait for the greeting to end, so the short voicemail message is heard whole.
            machine_detection="DetectMessageEnd",
        )
    except TwilioApiError as error:
        db.session.execute(
            sa.update(Callback)
            .where(Callback.id == callback_id, Callback.status == "placing")
            .values(status="error", error_code=error.code, updated_at=clock.now())
        )
        db.session.commit()
        logger.warning(
            "callback %s to %s not placed: %s", callback_id, mask(callback.to_number), error
        )
        return db.session.get(Callback, callback_id, populate_existing=True)  # type: ignore[return-value]
    # The call's webhooks may already have moved the row on (and set the sid): only fill gaps.
    db.session.execute(
        sa.update(Callback)
        .where(Callback.id == callback_id, Callback.status == "placing")
        .values(status="calling", updated_at=clock.now())
    )
    db.session.execute(
        sa.update(Callback)
        .where(Callback.id == callback_id, Callback.call_sid.is_(None))
        .values(call_sid=info.sid)
    )
    db.session.commit()
    logger.info("callback %s placed to %s as %s", callback_id, mask(callback.to_number), info.sid)
    return db.session.get(Callback, callback_id, populate_existing=True)  # type: ignore[return-value]


def lock(callback_id: int) -> Callback | None:
    """The callback row named by a webhook's ``c`` parameter, locked (None when unknown)."""
    return db.session.scalar(sa.select(Callback).where(Callback.id == callback_id).with_for_update())


def record_answer(callback: Callback, call_sid: str, answered_by: str | None) -> bool:
    """Note who answered; True when it is a person (or AMD could not tell) and the call goes on."""
    callback.call_sid = callback.call_sid or call_sid
    callback.answered_by = answered_by or None
    callback.updated_at = clock.now()
    if (answered_by or "").lower() in MACHINE_ANSWERS:
        callback.status = "not_reached"
        return False
    callback.status = "answered"
    return True


def record_status(
    callback: Callback, call_sid: str, call_status: str, answered_by: str | None
) -> None:
    """Apply a status callback of the outbound call to the callback row."""
    callback.call_sid = callback.call_sid or call_sid or None
    callback.call_status = call_status
    if answered_by and not callback.answered_by:
        callback.answered_by = answered_by
    callback.updated_at = clock.now()
    if call_status in NOT_REACHED_STATUSES and callback.status in LIVE:
        callback.status = "not_reached"
    elif call_status == "completed":
        callback.status = (
            "completed"
            if callback.status == "answered"
            else ("not_reached" if callback.status in LIVE else callback.status)
        )


def latest(
    account_id: int, now: datetime, within: timedelta = timedelta(hours=1)
) -> Callback | None:
    """The account's most recent callback of the last hour, for the page's status line."""
    return db.session.scalar(
        sa.select(Callback)
        .where(Callback.account_id == account_id, Callback.created_at > now - within)
        .order_by(Callback.created_at.desc(), Callback.id.desc())
        .limit(1)
    )


def shown_status(callback: Callback | None, now: datetime) -> str | None:
    """The status the page shows: calling, answered, completed, not_reached, error, or None."""
    if callback is None:
        return None
    if callback.status in LIVE:
        stale = STALE_QUEUED if callback.status == "queued" else STALE_CALLING
        if now - callback.updated_at > stale:
            return "error" if callback.status == "queued" else None
        return "calling"
    if callback.status == "answered" and now - callback.updated_at > timedelta(minutes=30):
        return None  # we never heard the end of it; say nothing rather than "on the call"
    return callback.status
