"""Dates and clock times written for a text message or a web page, in each language's own order.

The words (month names, the order of day and month, 12- or 24-hour clock) are in the ``[dates]``
section of the catalogues; spoken dates are ``speech.day``.
"""

from datetime import date, datetime

from . import text


def _month(value: date, lang: str, key: str) -> str:
    return text(f"dates.{key}", lang).split()[value.month - 1]


def short_date(value: date, lang: str) -> str:
    """A date for a text message: "Dec 5" / "5 dic"."""
    return text("dates.short_date", lang, month=_month(value, lang, "short_months"), day=value.day)


def long_date(value: date, lang: str) -> str:
    """The date in words: "December 5, 2026" / "5 de diciembre de 2026"."""
    return text("dates.long_date", lang, month=_month(value, lang, "months"), day=value.day, year=value.year)


def clock_time(value: datetime, lang: str) -> str:
    """The clock time: "3:15 PM" / "15:15" (the local time ``value`` carries)."""
    if text("dates.time_12h", lang) == "yes":
        hour = value.hour % 12 or 12
        return f"{hour}:{value:%M} {'AM' if value.hour < 12 else 'PM'}"
    return f"{value:%H:%M}"


def short_datetime(value: datetime, lang: str) -> str:
    """A local date and time for a text message: "Dec 5, 2026 3:07 PM" / "5 dic 2026 15:07"."""
    return text(
        "dates.short_datetime",
        lang,
        month=_month(value, lang, "short_months"),
        day=value.day,
        year=value.year,
        time=clock_time(value, lang),
    )


def moment(value: datetime, lang: str, today: date) -> str:
    """A local time for "try again after …": the time alone today, else date and time."""
    if value.date() == today:
        return clock_time(value, lang)
    return text("dates.day_and_time", lang, date=long_date(value.date(), lang), time=clock_time(value, lang))
