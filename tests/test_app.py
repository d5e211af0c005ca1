"""The Streamlit app as a reader uses it, through Streamlit's AppTest: ask, follow up, ingest, upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SEEDS
from rag.store.records import CorpusOverview
from test_answer import CROSSING_QUESTION, write_crossing_story
from test_discrepancies import write_ferry_tolls

HOSTILE = (
    "---\ntitle: Council ![x](http://example.invalid/t.png) vote\noutlet: Town <b>Crier</b>\n"
    "published: 2024-05-02\nurl: javascript:alert(1)\n---\n"
    "The town council voted to rebuild the old harbour wall on Tuesday. "
    "<script>document.title='pwned'</script> <img src=x onerror=alert(1)> "
    "![x](http://example.invalid/t.png) [click](javascript:alert(1)) "
    "The harbour wall rebuilding will start in June.\n"
)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ingest) -> AppTest:
    return app_on_seeds(monkeypatch, tmp_path, ingest)


def app_on_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ingest) -> AppTest:  # type: ignore[no-untyped-def]
    """The app on a store holding the seed article, with an empty corpus folder of its own."""
    monkeypatch.setenv("NEWSDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEWSDESK_CORPUS_DIR", str(tmp_path / "corpus"))
    (tmp_path / "corpus").mkdir()
    ingest(SEEDS)
    test = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    test.run()
    assert not test.exception
    return test


def ask(app: AppTest, question: str) -> None:
    app.chat_input[0].set_value(question).run()
    assert not app.exception, app.exception


def last_answer(app: AppTest) -> str:
    return app.chat_message[-1].markdown[0].value


def test_seed_question_streams_a_cited_answer_with_its_source_card(app: AppTest) -> None:
    ask(app, "Which country will join the Abraham Accords?")
    answer = last_answer(app)
    assert "Kazakhstan" in answer and r"\[1\]" in answer
    (card,) = app.chat_message[-1].expander
    assert card.label.startswith("[1] No headline · unknown outlet · date unknown")
    passage = card.get("html")[0].proto.body
    assert "<mark>" in passage and "Kazakhstan will be joining the Abraham Accords" in passage
    assert "Answered by: offline extractive" in [c.value for c in app.chat_message[-1].caption]


def test_unrelated_question_says_the_sources_do_not_say(app: AppTest) -> None:
    ask(app, "Who won the 2018 World Cup?")
    assert "The sources don't say" in last_answer(app)
    assert len(app.chat_message[-1].expander) == 0


def test_follow_up_uses_the_conversation(app: AppTest) -> None:
    ask(app, "Which country will join the Abraham Accords?")
    ask(app, "And what did Saudi Arabia say?")
    assert len(app.chat_message) == 4
    assert "Saudi Arabia" in last_answer(app)
    assert "Kazakhstan" in app.chat_message[1].markdown[0].value, "the first answer stays in the history"


def test_sidebar_ingest_shows_its_summary_and_the_article_becomes_answerable(
    app: AppTest, tmp_path: Path
) -> None:
    (tmp_path / "corpus" / "ferry.md").write_text(
        "---\ntitle: Ferry strike ends\noutlet: Harbor Times\npublished: 2024-04-01\n---\n"
        "The ferry workers' strike ended after the union accepted a new pay offer.\n"
    )
    app.sidebar.button[0].click().run()
    assert not app.exception
    summary = " ".join(t.value for t in app.sidebar.text)
    assert "1 new, 0 changed" in summary
    ask(app, "Why did the ferry strike end?")
    assert "pay offer" in last_answer(app)


def test_the_sidebar_counts_with_separators_and_names_what_its_button_reads(
    app: AppTest, tmp_path: Path
) -> None:
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert captions.startswith("Last ingest: ") and "folder" not in captions  # built from seeds/, not corpus/
    assert str(tmp_path / "corpus") in (app.sidebar.button[0].help or "")
    assert any(m.value.startswith("1 article · ") for m in app.sidebar.markdown)
    large = CorpusOverview(6624, 76895, ["Harbor Times"] * 1200, None, None, 0, None)  # as a store that size
    assert large.size_line() == "6,624 articles · 76,895 passages · 1,200 outlets"


def test_uploaded_article_is_saved_and_answerable(app: AppTest, tmp_path: Path) -> None:
    content = b"Lighthouse reopens\n\nThe old lighthouse reopened after a storm damaged its lamp.\n"
    app.sidebar.file_uploader[0].set_value(("lighthouse.txt", content, "text/plain")).run()
    assert not app.exception
    assert (tmp_path / "corpus" / "uploads" / "lighthouse.txt").read_bytes() == content
    assert "1 new" in " ".join(t.value for t in app.sidebar.text)
    ask(app, "What happened to the old lighthouse?")
    assert "damaged its lamp" in last_answer(app)


def test_hostile_article_renders_as_plain_text(app: AppTest, tmp_path: Path) -> None:
    (tmp_path / "corpus" / "hostile.md").write_text(HOSTILE)
    app.sidebar.button[0].click().run()
    ask(app, "When will the harbour wall rebuilding start?")
    message = app.chat_message[-1]
    answer = last_answer(app)
    assert "June" in answer
    (card,) = message.expander
    body = card.get("html")[0].proto.body
    for active in ("<script", "<img", "<b>", "href="):
        assert active not in body, active
    assert "&lt;script&gt;" in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "![x](http://example.invalid/t.png)" in body  # shown as written, not as an image
    assert r"\!\[x\]" in card.label, "a Markdown image in a headline must not render"
    assert "<b>" not in card.label and len(card.get("link_button")) == 0, "only http(s) article links"


def test_an_article_cited_from_two_passages_gets_one_card(app: AppTest, tmp_path: Path) -> None:
    write_crossing_story(tmp_path / "corpus")
    app.sidebar.button[0].click().run()
    ask(app, CROSSING_QUESTION)
    answer = last_answer(app)
    assert "40 million dollars" in answer and "1964" in answer
    assert r"\[2\]" not in answer
    (card,) = app.chat_message[-1].expander
    assert card.label.startswith("[1] Harbor crossing closes for six weeks of cable repairs · Harbor Times")
    passage = card.get("html")[0].proto.body
    assert passage.count("<mark>") >= 2 and "1964" in passage and "40 million dollars" in passage


def test_reports_that_differ_are_said_above_the_sources(app: AppTest, tmp_path: Path) -> None:
    write_ferry_tolls(tmp_path / "corpus")
    app.sidebar.button[0].click().run()
    ask(app, "How many people died when the ferry capsized off Port Alder?")
    (note,) = app.chat_message[-1].info
    shown = note.value.replace("\\", "")  # (as the reader sees it, the Markdown escapes gone)
    assert shown.startswith("Reports differ: 15 dead (Coastal Post, 21 Nov 2026, the newer) [")
    assert "at least 12 dead (Harbor Times, 20 Nov 2026, earlier)" in shown


def test_an_earlier_answer_says_when_its_article_was_since_updated(app: AppTest, tmp_path: Path) -> None:
    path = write_crossing_story(tmp_path / "corpus")
    app.sidebar.button[0].click().run()
    ask(app, CROSSING_QUESTION)
    assert not app.chat_message[-1].warning
    # The outlet corrects the cost; the next ingest stores the new version.
    path.write_text(path.read_text().replace("about 40 million dollars", "about 45 million dollars"))
    app.sidebar.button[0].click().run()
    (note,) = app.chat_message[-1].warning
    shown = note.value.replace("\\", "")
    assert shown.startswith("[1] was updated after this answer: “The work will cost about 40 million")
    assert "is no longer in it" in shown
    (card,) = app.chat_message[-1].expander
    assert "updated" not in card.label  # (the card is as it was when answered)
