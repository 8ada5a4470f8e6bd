"""Quiet hours judged in the member's own zone: 8 am to 9 pm local, strictest of several zones."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.outbox.quiet_hours import local_zones, next_allowed, state_of

NY = "+12125550123"
LA = "+14155552671"
PUERTO_RICO = "+17875550123"
GUAM = "+16715550123"
HONOLULU = "+18085550123"
ALASKA = "+19075550123"  # phonenumbers: Anchorage and Adak
MIAMI = "+13055550123"
TOLL_FREE = "+18005550199"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def allowed(number: str, now: datetime, **kw) -> datetime | None:
    return next_allowed(number, now, default_tz="America/New_York", **kw)


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        (NY, ["America/New_York"]),
        (LA, ["America/Los_Angeles"]),
        (PUERTO_RICO, ["America/Puerto_Rico"]),
        (GUAM, ["Pacific/Guam"]),
        (HONOLULU, ["Pacific/Honolulu"]),
        (ALASKA, ["America/Adak", "America/Anchorage"]),
        (TOLL_FREE, ["America/Chicago"]),  # says nothing about where the member is
        ("not a number", ["America/Chicago"]),
    ],
)
def test_local_zones(number, zones):
    assert [z.key for z in local_zones(number, "America/Chicago")] == zones


def test_local_zones_accepts_zoneinfo_default():
    assert local_zones("+1", ZoneInfo("America/Denver")) == [ZoneInfo("America/Denver")]


# January: New York UTC-5, Los Angeles UTC-8, Puerto Rico UTC-4 (no DST), Guam UTC+10,
# Honolulu UTC-10.
@pytest.mark.parametrize(
    ("number", "now", "opens"),
    [
        (NY, utc(2025, 1, 15, 12, 30), utc(2025, 1, 15, 13, 0)),  # 7:30 am -> 8 am
        (LA, utc(2025, 1, 15, 13, 0), utc(2025, 1, 15, 16, 0)),  # 8 am in NY, 5 am in LA
        (PUERTO_RICO, utc(2025, 1, 15, 11, 0), utc(2025, 1, 15, 12, 0)),
        (GUAM, utc(2025, 1, 15, 21, 0), utc(2025, 1, 15, 22, 0)),  # 7 am Jan 16 in Guam
        (HONOLULU, utc(2025, 1, 15, 16, 0), utc(2025, 1, 15, 18, 0)),
        (NY, utc(2025, 1, 16, 2, 0), utc(2025, 1, 16, 13, 0)),  # 9 pm is already quiet
        (LA, utc(2025, 7, 15, 14, 0), utc(2025, 7, 15, 15, 0)),  # summer: PDT is UTC-7
        (PUERTO_RICO, utc(2025, 7, 15, 11, 0), utc(2025, 7, 15, 12, 0)),  # no DST
    ],
)
def test_held_until_8am_local(number, now, opens):
    assert allowed(number, now) == opens
    # ... and at that instant the text may go.
    assert allowed(number, opens) is None


@pytest.mark.parametrize(
    ("number", "now"),
    [
        (NY, utc(2025, 1, 15, 13, 0)),  # 8:00 am sharp
        (NY, utc(2025, 1, 16, 1, 59)),  # 8:59 pm
        (LA, utc(2025, 1, 15, 20, 0)),
        (GUAM, utc(2025, 1, 15, 10, 0)),  # 8 pm in Guam, 5 am in New York
        (PUERTO_RICO, utc(2025, 1, 15, 12, 0)),  # 8 am in PR, 7 am in New York
    ],
)
def test_allowed_inside_window(number, now):
    assert allowed(number, now) is None


def test_several_zones_use_the_strictest():
    # 8 am in Anchorage (UTC-9) is 7 am in Adak (UTC-10): wait for Adak.
    assert allowed(ALASKA, utc(2025, 1, 15, 17, 0)) == utc(2025, 1, 15, 18, 0)
    # 8:30 pm Adak is 9:30 pm Anchorage: already closed for the Anchorage half.
    assert allowed(ALASKA, utc(2025, 1, 16, 6, 30)) == utc(2025, 1, 16, 18, 0)


def test_unknown_zone_uses_default_tz():
    now = utc(2025, 1, 15, 12, 0)  # 7 am New York, 6 am Chicago
    assert next_allowed(TOLL_FREE, now, default_tz="America/New_York") == utc(2025, 1, 15, 13, 0)
    assert next_allowed(TOLL_FREE, now, default_tz="America/Chicago") == utc(2025, 1, 15, 14, 0)


def test_custom_window():
    assert allowed(NY, utc(2025, 1, 15, 13, 30), window=(9, 20)) == utc(2025, 1, 15, 14, 0)


@pytest.mark.parametrize(
    ("number", "state"),
    [
        (MIAMI, "FL"),
        (LA, "CA"),  # "San Francisco, CA"
        (NY, "NY"),
        ("+12065550100", "WA"),  # "Washington State"
        (PUERTO_RICO, "PR"),
        (GUAM, "GU"),
        (TOLL_FREE, None),
        ("+442079460000", None),
    ],
)
def test_state_of(number, state):
    assert state_of(number) == state


def test_state_window_is_off_by_default():
    at_830pm_miami = utc(2025, 1, 16, 1, 30)
    assert allowed(MIAMI, at_830pm_miami) is None


def test_state_window_narrows_for_that_state_only():
    at_830pm_eastern = utc(2025, 1, 16, 1, 30)
    florida = {"FL": (8, 20)}
    assert allowed(MIAMI, at_830pm_eastern, state_windows=florida) == utc(2025, 1, 16, 13, 0)
    assert allowed(NY, at_830pm_eastern, state_windows=florida) is None


def test_state_window_cannot_widen_the_general_window():
    at_730am = utc(2025, 1, 15, 12, 30)
    assert allowed(MIAMI, at_730am, state_windows={"FL": (7, 22)}) == utc(2025, 1, 15, 13, 0)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        next_allowed(NY, datetime(2025, 1, 15, 12, 0), default_tz="America/New_York")
