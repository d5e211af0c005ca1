"""One store shared by several machines: the catalog in a real PostgreSQL, the vectors in a real `chroma run`
server, two ingest processes on different article sets at once while four processes ask questions, then
the same with one ingest killed (SIGKILL) half way through a write and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT
from rag.config import Settings
from rag.embeddings import MiniLMEmbedding
from rag.retrieve import Query, retrieve
from rag.store import open_store

pytestmark = pytest.mark.slow

PLACES = [
    "Aldermoor", "Brackenfield", "Corriston", "Dunmarsh", "Eastholme", "Fennick", "Galloway Point",
    "Harrowgate", "Ilbury", "Jessop Falls", "Kettering Bay", "Larkspur", "Marlow Heath", "Northwick",
    "Orrin Vale", "Pellham", "Quarrington", "Redmere", "Stowbridge", "Tarrant", "Upwey", "Varnham",
    "Wickford", "Yelverton",
]  # fmt: skip
THINGS = ["ferry terminal", "water treatment plant", "library", "tram depot", "stadium roof"]

ASKER = """
import json, sys, time, traceback
from datetime import date
from pathlib import Path
from rag.answer import ExtractiveAnswerer
from rag.config import load_settings
from rag.conversation import ask
from rag.embeddings import MiniLMEmbedding
from rag.retrieve import Query

settings = load_settings()
model = MiniLMEmbedding()
questions = json.loads(sys.argv[2])
asked, errors = 0, []
from rag.store import open_store
with open_store(settings) as store:
    print("ready", flush=True)
    while not Path(sys.argv[1]).exists():
        question = questions[asked % len(questions)]
        try:
            turn = ask(Query(question, as_of=date(2025, 6, 30)), store=store, embedder=model,
                       answerer=ExtractiveAnswerer(settings.answer), config=settings.retrieval)
            "".join(getattr(event, "text", "") for event in turn.events)
        except Exception:
            errors.append(traceback.format_exc())
        asked += 1
print(json.dumps({"asked": asked, "errors": errors}))
"""


def write_set(folder: Path, first: int, count: int, *, shared: str) -> list[str]:
    """Write `count` articles (each about one place's project) and a feed file with the record every set
    holds; return the ids of the articles."""
    folder.mkdir(parents=True)
    ids = []
    for n in range(first, first + count):
        place, thing = PLACES[n], THINGS[n % len(THINGS)]
        body = "\n\n".join(
            f"The council of {place} approved a new {thing} on day {p} of the debate, budgeted at "
            f"{n + p + 2} million dollars; {place} residents will vote on its opening hours in spring."
            for p in range(4)
        )
        name = f"{place.lower().replace(' ', '-')}.md"
        (folder / name).write_text(
            f"---\ntitle: {place} approves {thing}\noutlet: The {folder.name.title()} Post\n"
            f"published: 2025-05-{n % 28 + 1:02d}\n---\n{body}\n",
            encoding="utf-8",
        )
        ids.append(f"{folder.name}/{name}")
    (folder / "wire.jsonl").write_text(shared + "\n", encoding="utf-8")
    return ids


def catalog(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


def wait_for(url: str, sql: str, process: subprocess.Popen[str]) -> bool:
    """Wait until a query finds a row, while the process runs; whether it found one."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if catalog(url, sql):
            return True
    return False


def ingest(folder: Path, env: dict[str, str], data: Path, group: int = 4) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", str(folder)],
        env={**env, "NEWSDESK_DATA_DIR": str(data), "NEWSDESK_WRITE_GROUP": str(group)},
        cwd=folder.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes a test starts, killed at its end if still running: a failed test leaves none behind."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_ingest_workers_and_four_askers_share_one_store(
    database_url: str, chroma_server: dict[str, str], tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSDESK_DATABASE_URL": database_url, **chroma_server}
    wire = json.dumps({
        "doc_id": "https://wire.example/2025/05/20/harbour-strike",
        "title": "Harbour workers end strike", "published": "2025-05-20",
        "text": "Harbour workers in Velmora ended a nine-day strike on Tuesday after the port authority "
                "agreed to hire forty more crane operators, the union said.",
    })  # fmt: skip
    first = {
        name: write_set(tmp_path / name, n * 6, 6, shared=wire) for n, name in enumerate(["north", "south"])
    }
    # The same text in a file of each set: embedded once, the other recorded as its duplicate.
    for name in first:
        (tmp_path / name / "notice.md").write_text(
            "---\ntitle: Bridge closed for repairs\npublished: 2025-05-21\n---\nThe Wexley bridge is closed "
            "to all traffic until June while crews replace its deck, the highways agency said.\n"
        )
    stop = tmp_path / "stop"
    questions = [f"What did the council of {place} approve?" for place in PLACES[:12]]
    askers = [
        subprocess.Popen(
            [sys.executable, "-c", ASKER, str(stop), json.dumps(questions)],
            env={**env, "NEWSDESK_DATA_DIR": str(tmp_path / f"app-{n}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    started += askers
    # The askers start on an empty store: the catalog and collections are made by the first to open it.
    for asker in askers:
        assert asker.stdout is not None and asker.stdout.readline().strip() == "ready", asker.communicate()

    workers = [ingest(tmp_path / name, env, tmp_path / f"worker-{name}") for name in first]
    started += workers
    for worker in workers:
        finished(worker)
    check_store(database_url, env, tmp_path, expected=[i for ids in first.values() for i in ids])

    # Two more sets; the first worker is killed in the middle of a write, while the second goes on.
    second = {"west": write_set(tmp_path / "west", 12, 8, shared=wire)}
    second["east"] = write_set(tmp_path / "east", 20, 4, shared=wire)
    going = ingest(tmp_path / "west", env, tmp_path / "worker-west", group=1)
    started.append(going)
    assert wait_for(database_url, "SELECT 1 FROM articles WHERE article_id LIKE 'west/%'", going)
    killed = ingest(tmp_path / "east", env, tmp_path / "worker-east", group=2)
    started.append(killed)
    assert wait_for(database_url, "SELECT 1 FROM pending WHERE article_id LIKE 'east/%'", killed), (
        "the worker ended before it was caught in the middle of a write"
    )
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    finished(going)
    assert catalog(database_url, "SELECT article_id FROM pending"), (
        "another worker touched the dead one's write"
    )
    rerun = finished(ingest(tmp_path / "east", env, tmp_path / "worker-east"))
    assert "left half-written by an interrupted run were redone" in rerun

    stop.touch()
    for asker in askers:
        out, err = asker.communicate(timeout=300)
        assert asker.returncode == 0, err
        result = json.loads(out.splitlines()[-1])
        assert result["errors"] == [] and result["asked"] > 0, result["errors"][:1]
    check_store(
        database_url, env, tmp_path, expected=[i for ids in [*first.values(), *second.values()] for i in ids]
    )


def check_store(url: str, env: dict[str, str], tmp_path: Path, *, expected: list[str]) -> None:
    """Every article is stored once and answerable; the catalog's passages are Chroma's; no text is
    embedded twice; nothing is pending."""
    settings = Settings(
        data_dir=tmp_path / "check",
        database_url=url,
        chroma_host="127.0.0.1",
        chroma_port=int(env["CHROMA_PORT"]),
    )
    model = MiniLMEmbedding()
    with open_store(settings) as store:
        store.database.check_indexes()
        passages = [row[0] for row in store.database.rows("SELECT chunk_id FROM passages")]
        assert sorted(store.vector_ids()) == sorted(passages) and len(set(passages)) == len(passages)
        assert store.database.rows("SELECT article_id FROM pending") == []
        twice = store.database.rows(
            "SELECT text_hash FROM articles WHERE duplicate_of IS NULL GROUP BY text_hash HAVING count(*) > 1"
        )
        assert twice == [], "a text was embedded twice"
        stored = store.articles()
        assert set(expected) < set(stored)
        assert "https://wire.example/2025/05/20/harbour-strike" in stored
        for article_id in expected:
            place = stored[article_id].title.split(" approves ")[0]
            found = retrieve(
                Query(f"What did the council of {place} approve?"),
                store=store,
                embedder=model,
                config=settings.retrieval,
            )
            assert article_id in [p.article_id for p in found.passages[:5]], place
