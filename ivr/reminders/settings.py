"""The reminders' settings, read from the app config with the defaults the issue names."""

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app


@dataclass(frozen=True)
class Settings:
    """Link lifetime, callback limits and the numbers members are told to call."""

    org: str
    org_timezone: str
    public_base_url: str
    secret_key: str
    link_lifetime: timedelta
    callback_gap: timedelta
    callback_daily_limit: int
    pay_line: str  # the number that answers the IVR (members can always call it to pay)
    office_phone: str  # "how to reach the office" in HELP and on the page


def settings() -> Settings:
    """The current app's reminder settings.

    ``REMINDER_LINK_HOURS`` (72), ``CALLBACK_MIN_GAP_MINUTES`` (10), ``CALLBACK_DAILY_LIMIT`` (5)
    and ``ORG_PHONE`` (the office; defaults to ``TWILIO_FROM_NUMBER``, the pay line) are optional.
    """
    cfg = current_app.config
    pay_line = cfg["TWILIO_FROM_NUMBER"]
    return Settings(
        org=cfg["ORG_NAME"],
        org_timezone=cfg["ORG_TIMEZONE"],
        public_base_url=cfg["PUBLIC_BASE_URL"].rstrip("/"),
        secret_key=cfg["SECRET_KEY"],
        link_lifetime=timedelta(hours=float(cfg.get("REMINDER_LINK_HOURS") or 72)),
        callback_gap=timedelta(minutes=float(cfg.get("CALLBACK_MIN_GAP_MINUTES") or 10)),
        callback_daily_limit=int(cfg.get("CALLBACK_DAILY_LIMIT") or 5),
        pay_line=pay_line,
        office_phone=cfg.get("ORG_PHONE") or pay_line,
    )
