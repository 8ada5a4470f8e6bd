"""Texts as an outbox kind: receipts, reminders and replies, their policy and their transport.

Receipts are transactional: quiet hours never hold them, and a receipt Twilio refuses because the
calling number is not a mobile goes once to the phone on file. Reminders (and autopay's texts) wait
for quiet hours to end; a reminder or an autopay notice is dropped if the bill is paid first.
Delivery is at most once and none is lost: a text a stopped worker left ``sending`` is looked up in
Twilio's Messages list (our number, its number, its body, since it was queued) and recorded sent if
Twilio has it, sent now if not; a text that met an unexpected error while sending is failed for a
person to look at, never resent.
"""

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ..masking import mask
from ..models import Account
from ..twilio.adapter import TwilioApiError
from . import engine
from .models import OutboxMessage
from .quiet_hours import DEFAULT_WINDOW, QuietHours, Window
from .sms import SmsSender

logger = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=60)
MAX_RETRY_GAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
CLAIM_FOR = timedelta(minutes=5)
# Worst case for one send: TwilioRest's 15 s request timeout plus slack.
SEND_BUDGET = timedelta(seconds=20)
# After a 429 the rest of the batch waits this long; Twilio never processed the refused request.
RATE_LIMIT_PAUSE = timedelta(seconds=30)

NOT_A_MOBILE = 21614  # Twilio: "To" number is not a valid mobile number
PHONE_ON_FILE = ":phone-on-file"  # ends the dedupe key of a receipt sent again to the phone on file


def policy(
    *,
    default_tz: str = "America/New_York",
    window: Window = DEFAULT_WINDOW,
    state_windows: Mapping[str, Window] | None = None,
    rate_per_second: float | None = None,
) -> engine.Policy:
    """The texts' policy, with the co-op's quiet-hours and pacing settings."""
    return engine.Policy(
        first_retry=FIRST_RETRY,
        max_retry_gap=MAX_RETRY_GAP,
        give_up_after=GIVE_UP_AFTER,
        delivery=engine.Delivery.AT_MOST_ONCE,
        claim_for=CLAIM_FOR,
        send_budget=SEND_BUDGET,
        rate_per_second=rate_per_second,
        slow_down_pause=RATE_LIMIT_PAUSE,
        quiet_hours=QuietHours(default_tz, window, state_windows),
        obsolete=_bill_paid,
    )


def _bill_paid(session: Session, row: OutboxMessage) -> str | None:
    """A reminder (or an autopay notice) whose bill was paid while it waited need not go."""
    if row.kind not in ("reminder", "autopay_notice") or row.account_id is None:
        return None
    account = session.get(Account, row.account_id, populate_existing=True)
    if account is not None and account.balance_cents <= 0:
        return "bill paid before the reminder went out"
    return None


class SmsTransport:
    """Sends one text through an ``SmsSender``."""

    def __init__(self, sender: SmsSender) -> None:
        self.sender = sender

    def describe(self, row: OutboxMessage) -> str:
        """``text 12 (receipt) to …0123``."""
        return f"text {row.id} ({row.kind}) to {mask(row.to_number)}"

    def deliver(self, session: Session, row: OutboxMessage, now: datetime) -> engine.Failure | None:
        """Send the text; on a refusal record Twilio's code and say whether it is worth retrying."""
        try:
            result = self.sender.send(row.to_number, row.body)
        except TwilioApiError as error:
            row.error_code = error.code
            _receipt_to_phone_on_file(session, row, error, now)
            return engine.Failure(
                error.message,
                code=error.code,
                permanent=error.permanent,
                slow_down=error.rate_limited,
            )
        row.provider_sid = result.sid
        row.error_code = None
        return None

    def fate(self, session: Session, row: OutboxMessage, now: datetime) -> engine.Fate:
        """Ask Twilio whether it accepted this text (same number, same body, since the row was queued)."""
        try:
            sid = self.sender.find_sent(row.to_number, row.body, row.created_at)
        except TwilioApiError as error:
            logger.warning("could not ask Twilio about text %s: %s", row.id, error.message)
            return engine.Fate.UNKNOWN
        if sid is None:
            return engine.Fate.DID_NOT_GO
        row.provider_sid = sid
        row.error_code = None
        return engine.Fate.WENT


def sent_to_phone_on_file() -> sa.ColumnElement[bool]:
    """Rows whose text was handed on to the phone on file (a receipt the calling number could not take)."""
    copy = aliased(OutboxMessage)
    return sa.exists().where(copy.dedupe_key == OutboxMessage.dedupe_key + PHONE_ON_FILE)


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
                    dedupe_key=row.dedupe_key + PHONE_ON_FILE,
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
    logger.info(
        "text %s: %s is not a mobile; receipt queued for the phone on file %s",
        row.id,
        mask(row.to_number),
        mask(account.phone),
    )


def kind(sender: SmsSender, **settings: Any) -> engine.Kind:
    """Texts as the engine runs them; ``settings`` as for ``policy``."""
    return engine.Kind(OutboxMessage, policy(**settings), SmsTransport(sender))


def kind_for(config: Mapping[str, Any], sender: SmsSender) -> engine.Kind:
    """Texts with the app's settings (``ORG_TIMEZONE``, ``SMS_RATE_PER_SECOND``, state windows)."""
    return kind(
        sender,
        default_tz=config["ORG_TIMEZONE"],
        rate_per_second=config.get("SMS_RATE_PER_SECOND"),
        state_windows=config.get("QUIET_HOURS_STATE_WINDOWS"),
    )


def run_once(
    session: Session,
    sender: SmsSender,
    *,
    now: datetime | None = None,
    limit: int = 100,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    **settings: Any,
) -> engine.Report:
    """Send the texts that are due once and report what happened; ``settings`` as for ``policy``."""
    return engine.run_once(
        session, kind(sender, **settings), now=now, limit=limit, clock=clock, sleep=sleep
    )
