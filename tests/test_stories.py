"""Stories: copies of a wire story and later coverage of the same event are grouped at ingest, the grouping
survives reruns, and answers use it (one card per story with its outlets, timelines, the brief, "as of")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from conftest import (
    COAST,
    DAM_FOLLOW_UP,
    DAM_WIRE,
    HERALD,
    HERALD_FOLLOW_UP,
    LIBRARY_URL,
    ROOT,
    news_article,
    write_dam_story,
)
from rag.answer import ExtractiveAnswerer
from rag.config import Settings
from rag.conversation import ask
from rag.events import DatedLine, Sources
from rag.retrieve import Query
from rag.store import Store, open_store
from rag.stories import brief, timeline_subject


def stories(config: Settings) -> dict[str, tuple[str | None, str | None]]:
    """article id -> (story id, id of the article it is a near copy of)."""
    with open_store(config) as store:
        return {a.article_id: (a.story_id, a.copy_of) for a in store.articles().values()}


def answer(config: Settings, embedder, question: str, as_of: date = date(2026, 11, 20)) -> list:  # type: ignore[no-untyped-def]
    with open_store(config) as store:
        turn = ask(
            Query(question, as_of=as_of),
            store=store,
            embedder=embedder,
            answerer=ExtractiveAnswerer(config.answer),
            config=config.retrieval,
            stories=config.stories,
        )
        return list(turn.events)


def test_wire_copies_form_one_story_a_follow_up_joins_it_and_an_unrelated_article_does_not(
    ingest, config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    summary = ingest(tmp_path / "news")
    assert summary.new == 4 and not summary.failures

    grouped = stories(config)
    assert grouped[HERALD][0] == grouped[COAST][0] == grouped[HERALD_FOLLOW_UP][0]
    assert {grouped[HERALD][1], grouped[COAST][1]} == {None, COAST if grouped[HERALD][1] else HERALD}
    assert grouped[HERALD_FOLLOW_UP][1] is None  # same story, but its own report, not a copy
    assert grouped[LIBRARY_URL][0] not in {grouped[HERALD][0]}
    assert grouped[LIBRARY_URL][1] is None


def test_one_source_card_for_both_copies_names_both_outlets(ingest, config, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news", follow_up=False)
    ingest(tmp_path / "news")

    events = answer(config, embedder, "How many residents fled when the Cedar Creek Dam failed?")
    sources = events[-1]
    assert isinstance(sources, Sources) and sources.citations
    cited = [c.passage.article_id for c in sources.citations]
    assert len({HERALD, COAST} & set(cited)) == 1  # one card for the two copies
    card = next(c for c in sources.citations if c.passage.article_id in {HERALD, COAST})
    assert sorted(card.outlets) == ["Coast Daily", "Valley Herald"]
    other = card.other_reports[0]
    assert other.url in {HERALD, COAST} - {card.passage.article_id}
    assert other.published_at.startswith("2026-11-10")
    assert sources.newest == date(2026, 11, 10)


@pytest.mark.both_catalogs  # (the later article reads the stored ones' vectors through either catalog)
def test_reruns_keep_story_ids_and_a_later_article_joins_the_stored_story(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news", follow_up=False)
    ingest(tmp_path / "news")
    first = stories(config)

    assert ingest(tmp_path / "news").new == 0
    assert stories(config) == first

    write_dam_story(tmp_path / "news")  # the follow-up arrives two days later
    assert ingest(tmp_path / "news").new == 1
    after = stories(config)
    assert {k: v for k, v in after.items() if k in first} == first
    assert after[HERALD_FOLLOW_UP][0] == first[HERALD][0]


def test_grouping_a_new_article_reads_only_the_stored_articles_near_its_day(
    ingest, config, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news", follow_up=False)
    news_article(tmp_path / "news", "archive.md", title="Millbrook dam built", outlet="Valley Herald",
                 day="2019-04-02", url="https://valleyherald.example/1962",
                 body=DAM_WIRE.replace("Tuesday", "Monday"))  # fmt: skip
    ingest(tmp_path / "news")
    read: list[tuple[date, date] | None] = []
    story_members = Store.story_members

    def spy(self, days):  # type: ignore[no-untyped-def]
        read.append(days)
        return story_members(self, days)

    monkeypatch.setattr(Store, "story_members", spy)
    write_dam_story(tmp_path / "news")  # the follow-up, on 2026-11-12
    assert ingest(tmp_path / "news").new == 1
    reach = config.stories.copy_window_days
    assert read == [(date(2026, 11, 12) - timedelta(days=reach), date(2026, 11, 12) + timedelta(days=reach))]
    grouped = stories(config)
    assert grouped[HERALD_FOLLOW_UP][0] == grouped[HERALD][0]
    # a near copy of the text, seven years earlier, is not the same report: it keeps a story of its own
    assert grouped["https://valleyherald.example/1962"][0] != grouped[HERALD][0]


def test_regroup_gives_the_same_stories_without_embedding(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")
    before = stories(config)

    with open_store(config) as store:
        from ingest.pipeline import ingest_paths

        def no_model():  # type: ignore[no-untyped-def]
            raise AssertionError("regrouping must not embed")

        summary = ingest_paths(
            [tmp_path / "news"], config=config, store=store, embedder=no_model, regroup=True
        )
    assert summary.regrouped == 4
    assert stories(config) == before


def test_changed_thresholds_regroup_the_stored_articles(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")
    likeness = {"same_story": 0.99, "same_story_body": 0.99, "same_story_both": 0.99}
    strict = config.model_copy(update={"stories": config.stories.model_copy(update=likeness)})
    with open_store(strict) as store:
        from ingest.pipeline import ingest_paths

        ingest_paths([tmp_path / "news"], config=strict, store=store, embedder=lambda: None, regroup=True)
    grouped = stories(strict)
    assert grouped[HERALD][0] == grouped[COAST][0]  # copies still share their text
    assert grouped[HERALD_FOLLOW_UP][0] != grouped[HERALD][0]  # the follow-up is no longer alike enough


def test_timeline_lists_each_day_of_the_story_in_date_order_each_cited(
    ingest, config, embedder, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")

    events = answer(config, embedder, "How did the Millbrook dam collapse unfold?")
    lines = [e for e in events if isinstance(e, DatedLine)]
    sources = events[-1]
    assert [line.day for line in lines] == [date(2026, 11, 10), date(2026, 11, 12)]
    assert "Cracked spillway" in lines[1].text
    assert [line.number for line in lines] == [c.number for c in sources.citations] == [1, 2]
    assert sources.citations[1].passage.article_id == HERALD_FOLLOW_UP
    assert all("Springfield" not in line.text for line in lines)


def test_timeline_questions_are_recognised() -> None:
    assert timeline_subject("How did the Millbrook dam collapse unfold?") == "the Millbrook dam collapse"
    assert timeline_subject("Give me a timeline of the Twitter takeover") == "the Twitter takeover"
    assert timeline_subject("Twitter takeover timeline") == "Twitter takeover"
    assert timeline_subject("What happened at the dam?") is None


def test_brief_lists_only_the_stories_of_the_last_ingest(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ferry = "The harbour ferry will run every twenty minutes from December, the port authority said."
    news_article(tmp_path / "news", "old.md", title="Harbour ferry timetable changes", outlet="Harbor Times",
                 day="2026-11-01", url="https://harbor.example/ferry", body=ferry)  # fmt: skip
    ingest(tmp_path / "news")
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")

    with open_store(config) as store:
        covers, events = brief(store, config=config.stories)
        lines = [e for e in events if isinstance(e, DatedLine)]
        _, since = brief(store, since=date(2026, 11, 11), config=config.stories)
        since_lines = [e for e in since if isinstance(e, DatedLine)]
    assert "last ingest" in covers
    assert len(lines) == 2  # the dam story (three articles) first, then the library
    assert lines[0].note == "new story, 3 articles from 2 outlets"
    assert "Springfield" in lines[1].text
    assert all("ferry" not in line.text.lower() for line in lines)
    assert [line.text for line in since_lines] == [
        "Cracked spillway caused Millbrook dam collapse, investigators say"
    ]


def test_question_about_now_with_only_old_sources_is_warned(ingest, config, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")

    late = answer(config, embedder, "What is the latest on the Cedar Creek Dam?", as_of=date(2026, 12, 20))[
        -1
    ]
    assert late.newest == date(2026, 11, 12)
    assert late.stale and "12 Nov 2026" in late.stale and "38 days" in late.stale
    fresh = answer(config, embedder, "What is the latest on the Cedar Creek Dam?", as_of=date(2026, 11, 14))[
        -1
    ]
    assert fresh.stale is None
    past = answer(config, embedder, "Why did the Cedar Creek Dam fail?", as_of=date(2026, 12, 20))[-1]
    assert past.stale is None and past.newest is not None  # not a question about now


def test_cli_json_carries_story_and_outlets_and_the_timeline_and_brief_commands(
    ingest, config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    ingest(tmp_path / "news")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSDESK_DATA_DIR": str(config.data_dir)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip

    asked = run(
        "ask", "How many residents fled the Cedar Creek Dam flood?", "--as-of", "2026-11-20", "--json"
    )
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["as_of"] == "2026-11-12" or result["as_of"] == "2026-11-10"
    card = next(c for c in result["citations"] if c["article_id"] in {HERALD, COAST})
    assert card["story_id"] and sorted(card["outlets"]) == ["Coast Daily", "Valley Herald"]

    told = run("timeline", "the Millbrook dam collapse", "--as-of", "2026-11-20")
    assert told.returncode == 0, told.stderr
    dated = [line for line in told.stdout.splitlines() if line[:4] == "2026"]
    assert dated[0].startswith("2026-11-10") and dated[1].startswith("2026-11-12") and "[2]" in dated[1]

    briefed = run("brief", "--last-ingest")
    assert briefed.returncode == 0, briefed.stderr
    assert "What's new" in briefed.stdout and "new story, 3 articles from 2 outlets" in briefed.stdout


def test_a_digest_of_the_days_news_stays_out_of_the_stories_it_mentions(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    first, *_ = DAM_FOLLOW_UP.split("\n\n")
    title = '"5 things to know for Nov. 12: Millbrook dam, library"'  # (quoted: YAML)
    news_article(tmp_path / "news", "digest.md", title=title,
                 outlet="Valley Herald", day="2026-11-12", url="https://valleyherald.example/5-things-nov-12",
                 body=f"{first}\n\nSpringfield's library will open on Sundays again.")  # fmt: skip
    summary = ingest(tmp_path / "news")
    assert not summary.failures, summary.render()
    grouped = stories(config)
    digest = grouped["https://valleyherald.example/5-things-nov-12"][0]
    assert digest not in {grouped[HERALD][0], grouped[HERALD_FOLLOW_UP][0], grouped[LIBRARY_URL][0]}
    assert grouped[HERALD_FOLLOW_UP][0] == grouped[HERALD][0]
