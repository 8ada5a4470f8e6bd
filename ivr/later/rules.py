"""When paying later happens: the moment a day's payments are charged, until when one can be cancelled,
and which bills autopay takes on. Days are calendar days in ``ORG_TIMEZONE``; moments are UTC.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

# Cancelling a scheduled payment is possible until this long before it is charged (contract).
CANCEL_BEFORE = timedelta(hours=24)
# Autopay texts the amount this many days before a bill's due date, and charges only after that text.
NOTICE_DAYS = 2
# A claimed charge not finished in this time is taken for abandoned (a worker died) and run again
# with the same attempt key. Far below Stripe's 24 hours of idempotency.
CLAIM_FOR = timedelta(minutes=10)
# Stripe keeps an idempotency key at least 24 hours: an attempt older than this is never sent again,
# since Stripe might no longer know it and charge a second time. Its webhook settles it instead.
ATTEMPT_KEY_SAFE_FOR = timedelta(hours=12)
# Stripe unreachable: try again (same key) after these gaps, and give up this long after the charge moment.
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY_GAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=6)


def zone() -> ZoneInfo:
    """The co-op's time zone."""
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def local_day(moment: datetime) -> date:
    """The co-op's calendar day at ``moment``."""
    return moment.astimezone(zone()).date()


def charge_moment(day: date) -> datetime:
    """When ``day``'s scheduled payments and autopay bills are charged: ``SCHEDULED_CHARGE_HOUR`` that day."""
    hour = int(current_app.config.get("SCHEDULED_CHARGE_HOUR", 9))
    return datetime.combine(day, time(hour), zone()).astimezone(UTC)


def cancel_deadline(charge_at: datetime) -> datetime:
    """The last moment a scheduled payment charged at ``charge_at`` may be cancelled."""
    return charge_at - CANCEL_BEFORE


def retry_delay(attempts: int) -> timedelta:
    """The wait before charging again after the ``attempts``-th try found Stripe unreachable."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY_GAP)


def first_autopay_due(enrolled_at: datetime) -> date:
    """The earliest due date autopay pays for an enrolment made at ``enrolled_at``: one whose notice
    day (two days before) is on or after the day of enrolment."""
    return local_day(enrolled_at) + timedelta(days=NOTICE_DAYS)
