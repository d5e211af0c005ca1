"""Time words in questions become the periods a reader means, counted from the as-of date."""

from __future__ import annotations

from datetime import date

import pytest

from rag.dates import time_frame

AS_OF = date(2022, 6, 17)  # a Friday


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("What happened this week in Ukraine?", date(2022, 6, 11), date(2022, 6, 17)),
        ("Who resigned yesterday?", date(2022, 6, 16), date(2022, 6, 16)),
        ("What did Congress pass last month?", date(2022, 5, 1), date(2022, 5, 31)),
        ("What did Congress pass last week?", date(2022, 6, 6), date(2022, 6, 12)),
        ("What happened in June?", date(2022, 6, 1), date(2022, 6, 17)),
        ("What happened in December?", date(2021, 12, 1), date(2021, 12, 31)),
        ("Which team has won since 2020?", date(2020, 1, 1), date(2022, 6, 17)),
        ("What happened on March 5?", date(2022, 3, 5), date(2022, 3, 5)),
        ("What happened in 2021?", date(2021, 1, 1), date(2021, 12, 31)),
        ("What did the Fed do in the past 3 weeks?", date(2022, 5, 27), date(2022, 6, 17)),
    ],
)
def test_time_words_become_date_ranges(question: str, start: date, end: date) -> None:
    frame = time_frame(question, as_of=AS_OF)
    assert (frame.start, frame.end) == (start, end)
    assert not frame.prefer_recent


def test_latest_asks_for_recent_news_without_a_range() -> None:
    frame = time_frame("What is the latest on inflation?", as_of=AS_OF)
    assert frame.prefer_recent and not frame.is_range


def test_a_question_without_time_words_has_no_period() -> None:
    frame = time_frame("Which country will join the Abraham Accords?", as_of=AS_OF)
    assert not frame.is_range and not frame.prefer_recent


def test_a_year_inside_a_name_is_not_a_period() -> None:
    assert not time_frame("Who won the 2018 World Cup?", as_of=AS_OF).is_range
