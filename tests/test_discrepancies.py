"""Where reports differ: two outlets' tolls of one event give one plain, cited line, the newer first; reports
that agree, or counts of different kinds, give none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from conftest import ROOT, news_article
from openai_server import openai_server
from rag import discrepancies
from rag.answer import ChatAnswerer, ExtractiveAnswerer
from rag.config import Settings
from rag.conversation import ask
from rag.documents import Passage
from rag.events import Sources
from rag.retrieve import Query
from rag.store import open_store

FIRST = (
    "At least 12 people were killed when a ferry capsized off Port Alder on Thursday, the coast guard said. "
    "Divers searched the hull overnight."
)
LATER = (
    "The death toll from Thursday's ferry capsizing off Port Alder rose to 15 on Friday, the coast guard "
    "said. "
    "Three more bodies were recovered from the hull."
)


def passage(article_id: str, text: str, outlet: str, day: str, story: str = "ferry") -> Passage:
    return Passage(f"{article_id}::0", article_id, text, f"{outlet} on the ferry", outlet, None, None,
                   f"{day}T09:00:00", 0, len(text), 1.0, story_id=story)  # fmt: skip


def pair(first: str, second: str, second_story: str = "ferry") -> tuple[discrepancies.Discrepancy, ...]:
    """What the Harbor Times' report of 20 Nov [1] and the Coastal Post's of 21 Nov [2] give different."""
    return discrepancies.find(
        [
            (1, passage("a", first, "Harbor Times", "2026-11-20")),
            (2, passage("b", second, "Coastal Post", "2026-11-21", story=second_story)),
        ]
    )


def test_two_outlets_tolls_give_one_line_newest_first_the_earlier_marked() -> None:
    found = pair(FIRST, LATER)
    assert len(found) == 1
    (d,) = found
    assert d.quantity == "deaths"
    assert [(v.value, v.outlet, v.day, v.citation) for v in d.values] == [
        (15, "Coastal Post", date(2026, 11, 21), 2),
        (12, "Harbor Times", date(2026, 11, 20), 1),
    ]
    assert d.values[0].newer and d.values[1].earlier
    assert d.line == (
        "Reports differ: 15 dead (Coastal Post, 21 Nov 2026, the newer) [2] and "
        "at least 12 dead (Harbor Times, 20 Nov 2026, earlier) [1]."
    )


def test_reports_that_agree_give_none() -> None:
    agreeing = LATER.replace("rose to 15", "stood at 12")
    assert pair(FIRST, agreeing) == ()


def test_numbers_of_different_kinds_give_none() -> None:
    injured = "Fifteen people were injured when a ferry capsized off Port Alder on Thursday, officials said."
    assert pair(FIRST, injured) == ()


def test_different_events_and_ambiguous_reports_give_none() -> None:
    other = "A bus crash in Leeds killed 15 people on Friday, police said."
    assert pair(FIRST, other, second_story="bus") == ()
    # A report giving two tolls says nothing clear about either; a toll of an earlier year is another event's.
    two = FIRST + " Officials later said 14 people had died."
    assert pair(two, LATER) == ()
    past = LATER.replace("rose to 15", "stood at 12") + " A ferry sinking there in 1998 killed 40 people."
    assert pair(FIRST, past) == ()
    # A count further down than an article's first six sentences is not its report of the event.
    filler = "Divers worked overnight. Crowds gathered at the pier. The ferry was 30 years old. "
    deep = 2 * filler + LATER
    assert pair(FIRST, deep) == ()
    # Reports weeks apart give counts of different times, not different reports of one count.
    weeks = discrepancies.find(
        [
            (1, passage("a", FIRST, "Harbor Times", "2026-11-20")),
            (2, passage("b", LATER, "Coastal Post", "2026-12-21")),
        ]
    )
    assert weeks == ()
    # Tolls of different places, or of one place and a whole country, are different quantities.
    here, elsewhere = FIRST.replace("off Port", "in Port"), LATER.replace("off Port Alder", "in Norland")
    assert pair(here, elsewhere) == ()
    assert pair(FIRST, LATER.replace("rose to 15", "rose to 15 nationwide")) == ()


def test_parts_of_a_toll_and_falling_counts_give_none() -> None:
    # A later, smaller toll is of something else: tolls of the dead only grow.
    fewer = LATER.replace("rose to 15", "rose to 9")
    assert pair(FIRST, fewer) == ()
    # A count of some of those killed (passengers, Americans), or of a day's share, is not the toll.
    passengers = FIRST.replace("At least 12 people were", "At least 15 passengers were")
    assert pair(FIRST, passengers) == ()
    americans = LATER.replace("The death toll", "The American death toll")
    assert pair(FIRST, americans) == ()
    day = FIRST.replace("12 people were killed", "15 people were killed in the last 24 hours")
    assert pair(FIRST, day) == ()
    either = FIRST.replace("12 people were killed", "15 people were killed or missing")
    assert pair(FIRST, either) == ()


def test_a_count_the_report_recalls_is_not_its_own() -> None:
    # "up from 12" is the earlier figure: the report still gives one toll, 15, and differs from the first.
    recalled = LATER.replace("on Friday,", "on Friday, up from 12 people killed by Thursday night,")
    (d,) = pair(FIRST.replace("At least 12", "At least 11"), recalled)
    assert [v.value for v in d.values] == [15, 11]


def test_counts_are_read_as_reporters_write_them() -> None:
    said = {
        (m.kind, m.value)
        for m in discrepancies.mentions(
            "The blast, which killed seven and injured 12, shocked the city. Police arrested 4 men. "
            "He was killed 3 days ago, 2 miles away; 12 percent were hurt. "
            "In 2019, 1,200 people were evacuated. Children under the age of 5 have died."
        )
    }
    assert said == {("dead", 7), ("injured", 12), ("arrested", 4), ("evacuated", 1200)}


def write_ferry_tolls(folder) -> None:  # type: ignore[no-untyped-def]
    news_article(folder, "harbor.md", title="Ferry capsizes off Port Alder, at least 12 dead",
                 outlet="Harbor Times", day="2026-11-20", url="https://harbortimes.example/ferry",
                 body=FIRST)  # fmt: skip
    news_article(folder, "coastal.md", title="Port Alder ferry toll rises to 15",
                 outlet="Coastal Post", day="2026-11-21", url="https://coastalpost.example/ferry",
                 body=LATER)  # fmt: skip


def test_an_answer_about_the_toll_says_the_reports_differ_with_both_cited(
    ingest, config, embedder, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_ferry_tolls(tmp_path / "news")
    assert not ingest(tmp_path / "news").failures
    with open_store(config) as store:
        asked = Query(
            "How many people died when the ferry capsized off Port Alder?", as_of=date(2026, 11, 22)
        )
        turn = ask(asked, store=store, embedder=embedder, answerer=ExtractiveAnswerer(config.answer),
                   config=config.retrieval, stories=config.stories)  # fmt: skip
        sources = next(e for e in turn.events if isinstance(e, Sources))
    (d,) = sources.discrepancies
    by_number = {c.number: c.passage.outlet_name for c in sources.citations}
    assert [(v.value, by_number[v.citation]) for v in d.values] == [
        (15, "Coastal Post"),
        (12, "Harbor Times"),
    ]
    # Each value's sentence is marked on its source card.
    for v in d.values:
        citation = next(c for c in sources.citations if c.number == v.citation)
        assert any(str(v.value) in citation.passage.text[a:b] for a, b in citation.highlights)


def test_cli_prints_the_line_and_json_carries_the_discrepancies(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_ferry_tolls(tmp_path / "news")
    assert not ingest(tmp_path / "news").failures
    env = {**os.environ, "NEWSDESK_DATA_DIR": str(config.data_dir)}
    question = ["How many people died when the ferry capsized off Port Alder?", "--as-of", "2026-11-22"]
    command = [sys.executable, "-m", "rag", "ask", *question]
    shown = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert "Reports differ: 15 dead (Coastal Post, 21 Nov 2026, the newer)" in shown.stdout
    printed = subprocess.run([*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, check=True)  # fmt: skip
    (d,) = json.loads(printed.stdout)["discrepancies"]
    assert d["quantity"] == "deaths"
    assert [(v["value"], v["outlet"], v["date"], v["newer"], v["earlier"]) for v in d["values"]] == [
        (15, "Coastal Post", "2026-11-21", True, False),
        (12, "Harbor Times", "2026-11-20", False, True),
    ]


def test_a_chat_models_answer_gets_the_line_too_even_citing_one_report(
    ingest, config, embedder, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_ferry_tolls(tmp_path / "news")
    assert not ingest(tmp_path / "news").failures
    with openai_server() as server, open_store(config) as store:
        server.reply = "At least 12 people were killed when a ferry capsized off Port Alder [1]."
        chat = ChatAnswerer(Settings(openai_api_key="k", openai_base_url=server.url, chat_model="tiny"))
        asked = Query(
            "How many people died when the ferry capsized off Port Alder?", as_of=date(2026, 11, 22)
        )
        turn = ask(asked, store=store, embedder=embedder, answerer=chat, config=config.retrieval,
                   stories=config.stories)  # fmt: skip
        sources = next(e for e in turn.events if isinstance(e, Sources))
    (d,) = sources.discrepancies
    by_number = {c.number: c.passage.outlet_name for c in sources.citations}
    assert [(v.value, by_number[v.citation], v.newer, v.earlier) for v in d.values] == [
        (15, "Coastal Post", True, False),
        (12, "Harbor Times", False, True),
    ]


def test_a_fires_size_differs_and_two_fires_do_not() -> None:
    first = "The Alder Fire has burned 10,000 acres north of Port Alder, fire officials said Thursday."
    later = "The Alder Fire had grown to 14,500 acres by Friday morning, with crews holding its eastern edge."
    (d,) = pair(first, later)
    assert d.quantity == "acres burned"
    assert [v.written for v in d.values] == ["14,500 acres burned", "10,000 acres burned"]
    other = later.replace("The Alder Fire", "The Cedar Fire")
    assert pair(first, other) == ()


def test_a_size_said_of_no_fire_is_of_the_fire_its_headline_names() -> None:
    def titled(article_id: str, text: str, title: str, day: str) -> Passage:
        return Passage(f"{article_id}::0", article_id, text, title, "Harbor Times", None, None,
                       f"{day}T09:00:00", 0, len(text), 1.0, story_id="fire")  # fmt: skip

    charred = "The Cedar Fire has charred at least 3,221 acres, officials said."
    later = titled("b", charred, "Crews gain ground", "2026-11-21")
    for headline, lines in (("Cedar Fire threatens sequoias", 1), ("Alder Fire threatens sequoias", 0)):
        first = titled("a", "The fire grew to 2,000 acres on Sunday, officials said.", headline, "2026-11-20")
        assert len(discrepancies.find([(1, first), (2, later)])) == lines
