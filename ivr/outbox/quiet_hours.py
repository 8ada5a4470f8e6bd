"""Quiet hours: whether a text may go to a number now, judged in the member's own time zone(s).

Zones come from phonenumbers' time-zone data. NANP territories (Puerto Rico, Guam, USVI, …) are
ordinary +1 numbers that phonenumbers places in their own zones. When a number maps to several
zones (e.g. Alaska: Anchorage and Adak) the strictest window wins: a text goes only when it is
inside the window in every one of them. Unknown and non-geographic numbers (toll-free, 500, …)
use the co-op's ``default_tz``: phonenumbers gives them every zone of the country, which says
nothing about where the member is and would leave almost no common window.

State-specific windows (off unless ``state_windows`` is given, e.g. ``{"FL": (8, 20)}``) are keyed
by the two-letter code of the state or territory. The state is taken from phonenumbers' geocoder
(the area code's description, "Tampa, FL" or "Florida"); a territory uses its region code ("PR",
"GU"). The window applied is the overlap of the general and the state window, so a state setting
can only narrow it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as pn_timezone

Window = tuple[int, int]  # whole local hours: allowed from start:00 up to (not including) end:00

# Federal TCPA calling hours: 8 am to 9 pm at the called party's location.
DEFAULT_WINDOW: Window = (8, 21)

_STATE_CODES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "Washington State": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Washington D.C.": "DC", "District of Columbia": "DC",
}  # fmt: skip


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _parse(e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def local_zones(e164: str, default_tz: str | ZoneInfo) -> list[ZoneInfo]:
    """The IANA zones the number may be in; ``[default_tz]`` when the number doesn't say."""
    number = _parse(e164)
    if number is None or not phonenumbers.is_number_geographical(number):
        return [_zone(default_tz)]
    zones = []
    for name in pn_timezone.time_zones_for_number(number):
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # "Etc/Unknown" and anything the local tz database lacks
    return zones or [_zone(default_tz)]


def state_of(e164: str) -> str | None:
    """Two-letter state or territory code for a +1 number (``"FL"``, ``"PR"``), else None."""
    number = _parse(e164)
    if number is None or number.country_code != 1:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region != "US":
        return region  # PR, GU, VI, MP, AS: territories have their own region codes
    description = geocoder.description_for_number(number, "en")
    if description in _STATE_CODES:
        return _STATE_CODES[description]
    _, _, suffix = description.rpartition(", ")
    return suffix if len(suffix) == 2 and suffix.isupper() else None


def effective_window(
    e164: str, window: Window = DEFAULT_WINDOW, state_windows: Mapping[str, Window] | None = None
) -> Window:
    """The window for this number: ``window`` narrowed by its state's entry in ``state_windows``."""
    start, end = window
    if state_windows:
        state = state_of(e164)
        if state in state_windows:
            state_start, state_end = state_windows[state]
            start, end = max(start, state_start), min(end, state_end)
    return start, end


def _inside(moment: datetime, zone: ZoneInfo, window: Window) -> bool:
    local = moment.astimezone(zone)
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return window[0] * 3600 <= seconds < window[1] * 3600


def _openings(after: datetime, zone: ZoneInfo, start_hour: int) -> list[datetime]:
    today = after.astimezone(zone).date()
    days = (today + timedelta(days=offset) for offset in range(-1, 3))
    instants = (_local_instant(day, start_hour, zone) for day in days)
    return [moment for moment in instants if moment > after]


def _local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def next_allowed(
    e164: str,
    now_utc: datetime,
    *,
    default_tz: str | ZoneInfo,
    window: Window = DEFAULT_WINDOW,
    state_windows: Mapping[str, Window] | None = None,
) -> datetime | None:
    """None if a text may go to ``e164`` now; else the UTC instant the (strictest) window opens."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    start, end = effective_window(e164, window, state_windows)
    if not 0 <= start < end <= 24:
        raise ValueError(f"quiet-hours window needs 0 <= start < end <= 24, not {(start, end)}")
    zones = local_zones(e164, default_tz)
    if all(_inside(now_utc, zone, (start, end)) for zone in zones):
        return None
    # The common window, if any, opens when the last of the zones' windows opens.
    candidates = sorted({moment for zone in zones for moment in _openings(now_utc, zone, start)})
    for moment in candidates:
        if all(_inside(moment, zone, (start, end)) for zone in zones):
            return moment
    # The zones' windows never overlap (an unusual setting): fall back to the co-op's zone.
    fallback = _zone(default_tz)
    if _inside(now_utc, fallback, (start, end)):
        return None
    return _openings(now_utc, fallback, start)[0]


@dataclass(frozen=True)
class QuietHours:
    """The co-op's quiet-hours setting, as the outbox applies it to the texts it holds back."""

    default_tz: str
    window: Window = DEFAULT_WINDOW
    state_windows: Mapping[str, Window] | None = None

    def opens(self, e164: str, now_utc: datetime) -> datetime | None:
        """None if a text may go to ``e164`` now; else when the window opens (see ``next_allowed``)."""
        return next_allowed(
            e164, now_utc, default_tz=self.default_tz, window=self.window, state_windows=self.state_windows
        )
