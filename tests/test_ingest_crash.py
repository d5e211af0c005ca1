"""Ingest killed (SIGKILL) at points chosen by watching the store converges to the state of an uninterrupted
run; What's new remembers a run killed after its last commit; and a command that would empty or change the
store while another ingest writes to it is refused and changes nothing."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, snapshot, write_articles, write_dam_story
from rag.config import Settings
from stepping import SteppedIngest

pytestmark = pytest.mark.slow


def catalog_counts(data_dir: Path) -> tuple[int, int]:
    """(articles committed, articles pending) as the catalog holds them now."""
    with closing(sqlite3.connect(data_dir / "newsdesk.sqlite")) as db:
        (committed,) = db.execute("SELECT count(*) FROM articles").fetchone()
        (pending,) = db.execute("SELECT count(*) FROM pending").fetchone()
    return committed, pending


def catalog_rows(data_dir: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(data_dir / "newsdesk.sqlite")) as db:
        articles = db.execute("SELECT article_id, content_hash, chunk_count FROM articles ORDER BY 1")
        passages = db.execute("SELECT chunk_id FROM passages ORDER BY 1")
        pending = db.execute("SELECT 'pending', article_id FROM pending ORDER BY 2")
        return [*articles.fetchall(), *passages.fetchall(), *pending.fetchall()]


def stepped(folder: Path, data_dir: Path, *, group: int, env: dict[str, str] | None = None) -> SteppedIngest:
    """`python -m ingest FOLDER` into `data_dir`, `group` passages a write, stopping at each step."""
    settings = {
        "PYTHONPATH": str(ROOT),
        "NEWSDESK_DATA_DIR": str(data_dir),
        "NEWSDESK_WRITE_GROUP": str(group),
    }
    steps = data_dir.parent / f"steps-{len(list(data_dir.parent.glob('steps-*.log')))}.log"
    return SteppedIngest([str(folder)], {**os.environ, **settings, **(env or {})}, steps)


def kill_when(
    ingest: SteppedIngest, data_dir: Path, wanted: Callable[[str, int, int], bool]
) -> tuple[int, int]:
    """Step the ingest until the store is as `wanted(step, committed, pending)` says, then SIGKILL it there;
    return (committed, pending) at the kill."""
    while (step := ingest.step()) is not None:
        counts = catalog_counts(data_dir)
        if wanted(step, *counts):
            ingest.kill()
            return counts
        ingest.go_on()
    raise AssertionError(f"ingest ended (exit {ingest.ended}) before the store reached the point to kill it")


def test_sigkill_at_chosen_points_then_rerun_equals_uninterrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    write_articles(folder, 24, paragraphs=4)
    reference_dir = tmp_path / "reference"
    assert run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(reference_dir)}).returncode == 0
    reference = snapshot(Settings(data_dir=reference_dir))

    data_dir = tmp_path / "killed"
    data_dir.mkdir()
    # Write groups of 8 passages: the 24 articles are written a few at a time.
    during_chroma_write = kill_when(
        stepped(folder, data_dir, group=8), data_dir, lambda step, done, pending: step == "vectors"
    )
    assert during_chroma_write[1] > 0, "killed with a write group's vectors in Chroma and its rows pending"
    between_groups = kill_when(
        stepped(folder, data_dir, group=8),
        data_dir,
        lambda step, done, pending: step == "commit" and done > 0 and pending > 0,
    )
    assert 0 < between_groups[0] < 24
    after_last_commit = kill_when(
        stepped(folder, data_dir, group=8),
        data_dir,
        lambda step, done, pending: step == "commit" and done == 24 and pending == 0,
    )
    assert after_last_commit == (24, 0)

    final = run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(data_dir)})
    assert final.returncode == 0, final.stderr
    state = snapshot(Settings(data_dir=data_dir))
    assert state.catalog == reference.catalog
    assert state.vectors == reference.vectors, "duplicate or orphan passages in Chroma"
    assert state.passages == reference.passages, "keyword index differs"
    assert state.pending == []
    rerun = run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(data_dir)})
    assert "0 new, 0 changed, 24 unchanged" in rerun.stdout


def test_whats_new_lists_the_stories_of_a_run_killed_right_after_its_last_commit(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    write_dam_story(folder)  # a dam failure (three reports) and a library vote
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    killed_at = kill_when(
        stepped(folder, data_dir, group=64),
        data_dir,
        lambda step, done, pending: step == "commit" and done == 4 and pending == 0,
    )
    assert killed_at == (4, 0)
    env = {"NEWSDESK_DATA_DIR": str(data_dir)}
    rerun = run_cli(str(folder), env=env)
    assert "0 new, 0 changed, 4 unchanged" in rerun.stdout, rerun.stdout + rerun.stderr

    shown = subprocess.run(
        [sys.executable, "-m", "rag", "brief", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    brief = json.loads(shown.stdout)
    assert brief["brief"].startswith("stored by the last ingest"), brief["brief"]
    notes = sorted(line["note"] for line in brief["lines"])
    assert notes == ["new story, 1 article", "new story, 3 articles from 2 outlets"]
    assert {line["text"] for line in brief["lines"]} >= {"Springfield council keeps library open on Sundays"}


REFUSED = re.compile(r"Another (ingest |Newsdesk )?process")


@pytest.mark.parametrize(
    ("vectors", "commands"),
    [
        ("embedded", [["--rebuild"], ["--prune"]]),
        ("server", [["--rebuild"], ["--prune"], ["--regroup"]]),
    ],
)
def test_commands_that_change_the_store_wait_for_no_one_and_change_nothing_while_an_ingest_writes(
    tmp_path: Path, request: pytest.FixtureRequest, vectors: str, commands: list[list[str]]
) -> None:
    server = request.getfixturevalue("chroma_server") if vectors == "server" else {}
    data_dir = tmp_path / "data"
    env = {**server, "NEWSDESK_DATA_DIR": str(data_dir)}
    early, later = tmp_path / "early", tmp_path / "later"
    write_articles(early, 6, prefix="early")
    write_articles(later, 16, paragraphs=4, prefix="later")
    assert run_cli(str(early), env=env).returncode == 0

    ingest = stepped(later, data_dir, group=8, env=env)
    while ingest.step() is not None and catalog_counts(data_dir) == (6, 0):
        ingest.go_on()  # on to the first write group of the later articles: pending, the lock held
    assert ingest.ended is None and catalog_counts(data_dir)[1] > 0
    before = catalog_rows(data_dir)
    for command in commands:
        refused = run_cli(*command, str(early), env=env)
        assert catalog_rows(data_dir) == before, f"{command} changed the store: {refused.stderr}"
        assert refused.returncode == 2, f"{command}: {refused.stdout} {refused.stderr}"
        assert REFUSED.search(refused.stderr), refused.stderr

    assert ingest.finish() == 0, ingest.output()
    assert "16 new" in ingest.output()[0]
    chroma = {key: server[key] for key in ("CHROMA_HOST", "CHROMA_PORT") if key in server}
    state = snapshot(Settings(data_dir=data_dir, **chroma))  # type: ignore[arg-type]
    assert len(state.catalog) == 22 and state.pending == []
    assert state.vectors == state.passages, "the running ingest's vectors and catalog differ"
