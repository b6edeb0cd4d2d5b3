"""The exchange calendar of the demo book: trading days, sessions, month slices.

Trading days are weekdays minus the main exchange closures (New Year's Day, the Spring
Festival week, Labour Day and National Day weeks). Sessions are 09:30-11:30 and
13:00-15:00 in the exchange's time zone (settings.TIME_ZONE); timestamps are produced
in UTC, as the database stores them.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import numpy as np
from django.conf import settings

# Lunar New Year's Day; the exchange closes from its eve for about a week.
_SPRING_FESTIVAL = {
    2008: (2, 7),
    2009: (1, 26),
    2010: (2, 14),
    2011: (2, 3),
    2012: (1, 23),
    2013: (2, 10),
    2014: (1, 31),
    2015: (2, 19),
    2016: (2, 8),
    2017: (1, 28),
    2018: (2, 16),
    2019: (2, 5),
    2020: (1, 25),
    2021: (2, 12),
    2022: (2, 1),
    2023: (1, 22),
    2024: (2, 10),
    2025: (1, 29),
    2026: (2, 17),
    2027: (2, 6),
    2028: (1, 26),
    2029: (2, 13),
    2030: (2, 3),
    2031: (1, 23),
    2032: (2, 11),
    2033: (1, 31),
    2034: (2, 19),
    2035: (2, 8),
}

MORNING_OPEN = 9 * 3600 + 30 * 60
MORNING_SECONDS = 2 * 3600
AFTERNOON_OPEN = 13 * 3600
SESSION_SECONDS = 4 * 3600


def is_trading_day(day: dt.date) -> bool:
    if day.weekday() >= 5:
        return False
    if (day.month, day.day) == (1, 1) or (day.month == 5 and day.day <= 3) or (day.month == 10 and day.day <= 7):
        return False
    festival = _SPRING_FESTIVAL.get(day.year)
    if festival:
        new_year = dt.date(day.year, *festival)
        if -1 <= (day - new_year).days <= 5:
            return False
    return True


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month `months` earlier (clamped to the month's last day)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Slice:
    """One month of the history: trading days [first, stop) of the calendar, and the day
    (a month end, or the last day before as-of) whose close the asset snapshot records."""

    first: int
    stop: int
    opens_on: dt.date
    snapshot_on: dt.date


@dataclass(frozen=True)
class Calendar:
    start: dt.date  # first day of the history
    as_of: dt.date  # the ledger holds everything before this day
    days: np.ndarray  # datetime64[D], the trading days in [start, as_of)
    midnight_us: np.ndarray  # int64 UTC microseconds of each trading day's local midnight
    slices: tuple[Slice, ...]

    @property
    def day_numbers(self) -> np.ndarray:
        """Trading days as days since 1970-01-01."""
        return self.days.astype(np.int64)

    def index_of(self, day_numbers: np.ndarray) -> np.ndarray:
        """Index of the first trading day on or after each day (len(days) when none)."""
        return np.searchsorted(self.day_numbers, day_numbers, side="left")

    def session_time_us(self, seconds: np.ndarray) -> np.ndarray:
        """Local time of day (microseconds) of `seconds` into the trading session."""
        seconds = np.asarray(seconds, dtype=np.float64)
        local = np.where(seconds < MORNING_SECONDS, MORNING_OPEN + seconds, AFTERNOON_OPEN + seconds - MORNING_SECONDS)
        return (local * 1_000_000).astype(np.int64)


def build_calendar(*, as_of: dt.date, months: int) -> Calendar:
    start = months_before(as_of, months)
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    days: list[dt.date] = []
    midnights: list[int] = []
    day = start
    while day < as_of:
        if is_trading_day(day):
            days.append(day)
            local_midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
            midnights.append(int(local_midnight.timestamp()) * 1_000_000)
        day += dt.timedelta(days=1)
    day_array = np.array(days, dtype="datetime64[D]")
    slices = []
    month_start = start
    while month_start < as_of:
        next_month = dt.date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)
        end = min(next_month, as_of)
        first, stop = np.searchsorted(day_array, np.array([month_start, end], dtype="datetime64[D]"))
        slices.append(Slice(int(first), int(stop), month_start, end - dt.timedelta(days=1)))
        month_start = next_month
    return Calendar(
        start=start,
        as_of=as_of,
        days=day_array,
        midnight_us=np.array(midnights, dtype=np.int64),
        slices=tuple(slices),
    )


def local_to_utc_us(day_numbers: np.ndarray, time_of_day_us: np.ndarray | int) -> np.ndarray:
    """UTC microseconds of a local (exchange time zone) day and time of day."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    unique, inverse = np.unique(np.asarray(day_numbers, dtype=np.int64), return_inverse=True)
    epoch = dt.date(1970, 1, 1)
    midnights = np.array(
        [
            int(dt.datetime.combine(epoch + dt.timedelta(days=int(d)), dt.time(), tzinfo=zone).timestamp()) * 1_000_000
            for d in unique.tolist()
        ],
        dtype=np.int64,
    )
    return midnights[inverse] + np.asarray(time_of_day_us, dtype=np.int64)
