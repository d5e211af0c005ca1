"""Turn the time words of a question ("this week", "in June", "since 2020") into dates around `as_of`."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dateparser

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTH_ABBR = "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
_MONTH = rf"(?:{_MONTHS}|(?:{_MONTH_ABBR})\.?)"
_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}
_NUMBERS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}
_RECENT = re.compile(r"\b(latest|recent(ly)?|newest|current(ly)?|now|so far|this morning|tonight)\b", re.I)


@dataclass(frozen=True)
class TimeFrame:
    """The period a question asks about: a date range, a wish for recent news, or neither."""

    start: date | None = None
    end: date | None = None
    prefer_recent: bool = False
    phrase: str | None = None  # the words it came from

    @property
    def is_range(self) -> bool:
        return self.start is not None or self.end is not None

    def contains(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def _parse(text: str, as_of: date) -> date | None:
    """Parse a date phrase with dateparser, taking the past relative to as_of."""
    settings = {
        "RELATIVE_BASE": datetime.combine(as_of, datetime.min.time()),
        "PREFER_DATES_FROM": "past",
        "PREFER_DAY_OF_MONTH": "first",
    }
    parsed = dateparser.parse(text, languages=["en"], settings=settings)  # type: ignore[arg-type]
    return parsed.date() if parsed else None


def _month_range(day: date) -> tuple[date, date]:
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _relative(question: str, as_of: date) -> TimeFrame | None:
    """Named periods counted back from as_of."""
    q = question.lower()
    monday = as_of - timedelta(days=as_of.weekday())
    named = {
        "today": (as_of, as_of),
        "yesterday": (as_of - timedelta(days=1), as_of - timedelta(days=1)),
        # A news week is the seven days up to as_of, so a Monday question still sees the weekend.
        "this week": (as_of - timedelta(days=6), as_of),
        "last week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "this month": (as_of.replace(day=1), as_of),
        "last month": _month_range(as_of.replace(day=1) - timedelta(days=1)),
        "this year": (date(as_of.year, 1, 1), as_of),
        "last year": (date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31)),
    }
    for phrase, (start, end) in named.items():
        if re.search(rf"\b{phrase}\b", q):
            return TimeFrame(start, end, phrase=phrase)
    match = re.search(
        r"\b(?:past|last|previous)\s+(\d+|a|one|two|three|four|five|six|seven|ten)\s+(day|week|month|year)s?\b",
        q,
    )
    if match:
        count = int(match[1]) if match[1].isdigit() else _NUMBERS[match[1]]
        return TimeFrame(as_of - timedelta(days=count * _UNITS[match[2]]), as_of, phrase=match[0])
    return None


def _named_dates(question: str, as_of: date) -> TimeFrame | None:
    """Months, years and dates named in the question, resolved with dateparser."""
    since = re.search(
        rf"\bsince\s+((?:{_MONTH}\s+\d{{1,2}},?\s+)?(?:{_MONTH}\s+)?\d{{4}}|{_MONTH}(?:\s+\d{{1,2}})?)\b",
        question,
        re.I,
    )
    if since and since[1].isdigit():
        return TimeFrame(date(int(since[1]), 1, 1), as_of, phrase=since[0])
    if since and (start := _parse(since[1], as_of)):
        return TimeFrame(start, as_of, phrase=since[0])
    day = re.search(
        rf"\b(?:on\s+)?({_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?)\b",
        question,
        re.I,
    )
    if day and (found := _parse(day[1], as_of)):
        return TimeFrame(found, found, phrase=day[0])
    month = re.search(rf"\b(?:in|during)\s+({_MONTH})(?:\s+(\d{{4}}))?\b", question, re.I)
    if month and (found := _parse(f"{month[1]} {month[2] or ''}".strip(), as_of)):
        return TimeFrame(*_month_range(found), phrase=month[0])
    year = re.search(r"\b(?:in|during)\s+((?:19|20)\d{2})\b", question, re.I)
    if year:
        return TimeFrame(date(int(year[1]), 1, 1), date(int(year[1]), 12, 31), phrase=year[0])
    return None


def time_frame(question: str, *, as_of: date) -> TimeFrame:
    """Return the period a question asks about, relative to as_of (a range, a recency wish, or nothing)."""
    frame = _relative(question, as_of) or _named_dates(question, as_of)
    if frame:
        end = min(frame.end, as_of) if frame.end else as_of
        return TimeFrame(frame.start, end, phrase=frame.phrase)
    recent = _RECENT.search(question)
    return TimeFrame(prefer_recent=True, phrase=recent[0]) if recent else TimeFrame()
