"""The served app in a real browser: Debian's chromium driven by Playwright, as a reader would use it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, free_port, write_dam_story, write_ferry_story
from rag.serve import wait_until_up
from test_app import HOSTILE

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# Without these, chromium reaches for Google's services at start-up; this machine has no network for them.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`python -m rag serve` on free ports, with the seed article and a hostile one in its corpus."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    root = tmp_path_factory.mktemp("served")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "000_c957ac075bc0a49a.txt", corpus)
    (corpus / "hostile.md").write_text(HOSTILE)
    with serve(root, corpus) as served:
        yield served


@contextmanager
def serve(root: Path, corpus: Path, **settings: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Run `python -m rag serve` on free ports over a corpus folder, with these environment settings;
    yield its address and what another terminal needs to share its store."""
    port, chroma_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in _OUTSIDE_SETTINGS}
    env |= {
        "PYTHONPATH": str(ROOT),
        "NEWSDESK_DATA_DIR": str(root / "data"),
        "NEWSDESK_CORPUS_DIR": str(corpus),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--port", str(port), "--chroma-port", str(chroma_port)],
        env=env | settings,
        cwd=root,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_stcore/health", process, what="the app", seconds=180)
        yield f"http://127.0.0.1:{port}", {**env, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_port)}
    finally:
        process.terminate()
        process.wait(timeout=60)


_OUTSIDE_SETTINGS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "CHROMA_PORT")


@pytest.fixture
def page(served_app: tuple[str, dict[str, str]]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.requests = []  # type: ignore[attr-defined]
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("request", lambda request: page.requests.append(request.url))  # type: ignore[attr-defined]
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore[attr-defined]
        page.goto(served_app[0])
        yield page
        browser.close()


def ask(page, question: str, mode: str = "offline extractive"):  # type: ignore[no-untyped-def]
    """Type a question, press Enter, and wait for the streamed answer's sources."""
    box = page.get_by_placeholder("Ask about the news")
    box.wait_for(timeout=60_000)
    answered = page.get_by_text(f"Answered by: {mode}")
    before = answered.count()  # (a conversation's earlier answers say it already)
    box.fill(question)
    box.press("Enter")
    answered.nth(before).wait_for(timeout=90_000)
    return page.get_by_test_id("stChatMessage").last


def test_question_in_the_browser_gets_a_cited_answer_and_a_source_card(page) -> None:  # type: ignore[no-untyped-def]
    answer = ask(page, "Which country will join the Abraham Accords?")
    text = answer.inner_text()
    assert "Kazakhstan" in text and "[1]" in text

    answer.get_by_text("[1] No headline").click()
    passage = answer.locator(".newsdesk-passage")
    passage.wait_for(timeout=10_000)
    assert "Kazakhstan will be joining the Abraham Accords" in passage.inner_text()
    assert passage.locator("mark").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)


def test_hostile_article_loads_nothing_and_runs_nothing(page) -> None:  # type: ignore[no-untyped-def]
    answer = ask(page, "When will the harbour wall rebuilding start?")
    answer.get_by_text("[1] Council").click()
    passage = answer.locator(".newsdesk-passage")
    passage.wait_for(timeout=10_000)
    page.wait_for_timeout(1_000)  # give any injected image or script the time to act

    assert "<script>" in passage.inner_text() and "onerror" in passage.inner_text()
    assert passage.locator("script, img, a").count() == 0
    assert answer.locator('a[href*="example.invalid"], a[href^="javascript"], img').count() == 0
    assert not [url for url in page.requests if "example.invalid" in url]
    assert page.dialogs == [] and page.evaluate("document.title") != "pwned"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)


def test_ingest_from_another_terminal_while_the_app_runs(page, served_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "tram.md").write_text(
        "---\ntitle: Night trams return\noutlet: Harbor Times\npublished: 2024-06-01\n---\n"
        "Night trams will run again from July after the city hired forty new drivers.\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "ingest", str(folder)],
        env=served_app[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    answer = ask(page, "When will the night trams run again?")
    assert "forty new drivers" in answer.inner_text()


def test_a_follow_up_asking_when_gets_the_date_of_what_the_first_answer_said(
    page, served_app, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "ferry"
    write_ferry_story(folder)
    result = subprocess.run(
        [sys.executable, "-m", "ingest", str(folder)], env=served_app[1], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = ask(page, "Which island will the new ferry route serve?")
    assert "Inishmore" in first.inner_text()
    follow = ask(page, "When was that announced?")
    assert (
        follow.inner_text()
        .split("smart_toy")[-1]
        .strip()
        .startswith("The board announced it on Tuesday, May 7")
    )
    assert page.get_by_test_id("stChatMessage").count() >= 4, "both questions and answers stay on the page"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "follow_up.png"), full_page=True)


def dated(items: list[str]) -> list[str]:
    """The list items that begin with a date, as the lines of a timeline or a brief do."""
    return [item for item in items if re.match(r"\d{1,2} [A-Z][a-z]{2} \d{4}", item)]


def test_timeline_renders_a_dated_cited_list_and_whats_new_shows_the_second_ingest(
    page, served_app, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    write_dam_story(tmp_path / "news")
    result = subprocess.run(
        [sys.executable, "-m", "ingest", str(tmp_path / "news")],
        env=served_app[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr

    answer = ask(page, "How did the Millbrook dam collapse unfold?", mode="timeline of the stored stories")
    items = dated(answer.locator("li").all_inner_texts())
    assert len(items) == 2
    first, second = items
    assert first.startswith("10 Nov 2026") and "[1]" in first
    assert second.startswith("12 Nov 2026") and "Cracked spillway" in second and "[2]" in second
    assert "reported by 2 outlets" in answer.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    answer.screenshot(path=str(ARTIFACTS / "timeline.png"))

    page.get_by_text("What's new").first.click()
    page.get_by_text("Answered by: brief of the stored stories").wait_for(timeout=60_000)
    listed = dated(page.locator("li").all_inner_texts())
    assert any(
        "Cracked spillway" in item and "new story, 3 articles from 2 outlets" in item for item in listed
    )
    assert any("Springfield council" in item for item in listed)
    assert len(listed) == 2  # nothing from the first ingest (the seed, the hostile page)
    page.screenshot(path=str(ARTIFACTS / "whats_new.png"), full_page=True)


def test_follow_feed_never_saves_an_address_it_refuses(page, served_app) -> None:  # type: ignore[no-untyped-def]
    sources = Path(served_app[1]["NEWSDESK_DATA_DIR"]).parent / "sources.toml"  # the app's working folder
    box = page.get_by_placeholder("https://…")
    refusals = {
        "http://169.254.169.254/latest/meta-data/": "a link-local address",
        "file:///etc/passwd": "URLs are fetched, not file",
    }
    try:
        for n, (url, reason) in enumerate(refusals.items()):
            if n == 1:  # the first into a folder without a sources file, the second beside one
                sources.write_text('folders = ["corpus"]\nfeeds = ["https://news.example.org/atom.xml"]\n')
            before = sources.read_bytes() if sources.exists() else None
            box.fill(url)
            box.press("Enter")
            page.get_by_role("button", name="Follow feed").click()
            error = page.get_by_test_id("stAlert").filter(has_text="Not followed, nothing saved")
            error.filter(has_text=reason).wait_for(timeout=60_000)
            assert url in error.inner_text().replace("\u2060", "")  # the joiner that keeps it no link
            assert (sources.read_bytes() if sources.exists() else None) == before, f"{url} was saved"
        page.screenshot(path=str(ARTIFACTS / "follow_refused.png"), full_page=True)
    finally:
        sources.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def served_chat_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app answering with a scripted chat model over the OpenAI protocol, on the dam story."""
    from openai_server import openai_server

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    root = tmp_path_factory.mktemp("served-chat")
    write_dam_story(root / "corpus")
    with openai_server() as server:
        # The draft invents a figure and an uncited claim; the one revision keeps the figure.
        server.reply = (
            "The Cedar Creek Dam gave way on Tuesday, forcing about 4,000 residents from their homes [1]. "
            "Damage was put at $40 million [1]. Rescue crews saved everyone."
        )
        server.rewrite = (
            "The Cedar Creek Dam gave way on Tuesday, forcing about 4,000 residents from their homes [1]. "
            "Damage was put at $40 million [1]."
        )
        with serve(root, root / "corpus", OPENAI_BASE_URL=server.url, NEWSDESK_CHAT_MODEL="tiny") as served:
            yield served[0]


def test_unsupported_sentences_of_a_chat_answer_are_marked_in_the_app(served_chat_app) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(served_chat_app)
        answer = ask(page, "What happened when the Cedar Creek Dam failed?", mode="chat model tiny")
        text = answer.inner_text()
        assert "Revised after checking: 2 sentences were not supported by its sources" in text
        assert "Rescue crews saved everyone" not in text  # the draft is folded away, the rewrite shown
        warning = answer.get_by_test_id("stAlert").filter(has_text="Not supported by its sources")
        assert warning.count() == 1
        assert "$40 million" in warning.inner_text() and "is not in [1]" in warning.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "unsupported.png"), full_page=True)
        browser.close()
