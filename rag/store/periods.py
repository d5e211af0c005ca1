"""How the store is laid out in time, so that a question's cost follows the period it asks about.

Each article belongs to the month it was published in (UTC), or to `undated`. Its passages' vectors live on
that month's shelf, a Chroma collection: the decade's while the decade holds few, then the year's, then the
month's own (`Settings.shelf_size`), so a search reads a few collections in a small store and only the months
it asks for in a large one. Its catalog rows get row ids ordered by publish day (the day's number, shifted,
plus a sequence), so the keyword and headline indexes (FTS5, keyed by those row ids) read a period as a
range.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime

UNDATED = "undated"
DAY_BITS = 22  # row ids per publish day: 4 million passages a day before one day's range runs out
_EPOCH = date(1970, 1, 1)


def period_of(published_ts: float | None) -> str:
    """The period of an article published at a time (seconds since the epoch): its UTC month, "YYYY-MM"."""
    if published_ts is None:
        return UNDATED
    return datetime.fromtimestamp(published_ts, UTC).strftime("%Y-%m")


def day_number(published_ts: float | None) -> int:
    """The publish day's number as row ids use it: 0 for an undated article; days before 1970-01-02
    share day 1."""
    return 0 if published_ts is None else max(1, int(published_ts // 86400))


def first_rowid(published_ts: float | None) -> int:
    """The first row id of an article's publish day."""
    return day_number(published_ts) << DAY_BITS


def span(period: str) -> tuple[date, date] | None:
    """The first and last day of a month period; None for undated."""
    if period == UNDATED:
        return None
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def rowid_ranges(periods: Iterable[str]) -> list[tuple[int, int]]:
    """The row id ranges (first, last) that hold the rows of these periods, adjacent months merged."""
    ranges: list[tuple[int, int]] = []
    for period in sorted(set(periods)):
        days = span(period)
        if days is None:
            low, high = 0, (1 << DAY_BITS) - 1
        else:
            low = _day(days[0]) << DAY_BITS
            high = ((_day(days[1]) + 1) << DAY_BITS) - 1
        if ranges and low <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(high, ranges[-1][1]))
        else:
            ranges.append((low, high))
    return ranges


def _day(day: date) -> int:
    return max(1, (day - _EPOCH).days)


def shelf_of(period: str, split: set[str] | frozenset[str]) -> str:
    """The shelf that holds a period's vectors: its decade ("2020s"), or its year once the decade is split,
    or the month itself once the year is split."""
    if period == UNDATED:
        return UNDATED
    decade, year = period[:3] + "0s", period[:4]
    if decade not in split:
        return decade
    return year if year not in split else period
