"""Shared fixtures: an isolated data folder, the real embedding model, and ways to run ingest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from postgres import postgres_server, server_programs

from ingest.pipeline import Summary, ingest_paths
from rag.config import Settings
from rag.embeddings import MiniLMEmbedding
from rag.serve import wait_until_up
from rag.store import open_store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
_ENV_KEYS = ("CHROMA_HOST", "CHROMA_PORT", "OPENAI_API_KEY", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's settings and `.env` out of the tests."""
    for key in list(os.environ):
        if key.startswith("NEWSDESK_") or key in _ENV_KEYS:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `both_catalogs` runs with the catalog in SQLite and, on a real server, in PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_catalogs") and "config" in metafunc.fixturenames:
        metafunc.parametrize("config", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The settings of a store in the test's own folder: its catalog in SQLite, or in a new PostgreSQL
    database (`both_catalogs`)."""
    if getattr(request, "param", "sqlite") == "postgres":
        return Settings(data_dir=tmp_path / "data", database_url=request.getfixturevalue("database_url"))
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedding:
    return MiniLMEmbedding()


@pytest.fixture
def ingest(config: Settings, embedder: MiniLMEmbedding):  # type: ignore[no-untyped-def]
    """Run ingest in this process with the shared model; returns the summary."""

    def run(
        *paths: Path, prune: bool = False, dry_run: bool = False, settings: Settings | None = None
    ) -> Summary:
        chosen = settings or config
        with open_store(chosen) as store:
            return ingest_paths(
                list(paths),
                config=chosen,
                store=store,
                embedder=lambda: embedder,
                prune=prune,
                dry_run=dry_run,
            )

    return run


@dataclass(frozen=True)
class State:
    """Everything the store holds, to compare runs."""

    # id -> (content hash, passages, duplicate of, story, near copy of)
    catalog: dict[str, tuple[str, int, str | None, str | None, str | None]]
    vectors: list[str]  # chunk ids in Chroma
    passages: list[str]  # chunk ids in the keyword index
    pending: list[str]

    def vectors_of(self, article_id: str) -> list[str]:
        return [v for v in self.vectors if v.startswith(f"{article_id}::")]


def snapshot(config: Settings) -> State:
    """Read the whole store, checking that the keyword index matches its passages."""
    with open_store(config) as store:
        store.database.check_indexes()
        return State(
            catalog={
                e.article_id: (e.content_hash, e.chunk_count, e.duplicate_of, e.story_id, e.copy_of)
                for e in store.articles().values()
            },
            vectors=sorted(store.vector_ids()),
            passages=sorted(row[0] for row in store.database.rows("SELECT chunk_id FROM passages")),
            pending=[row[0] for row in store.database.rows("SELECT article_id FROM pending")],
        )


def keyword_hits(config: Settings, word: str) -> list[str]:
    """Return the chunk ids the keyword search finds for a word."""
    with open_store(config) as store:
        return sorted(passage.chunk_id for passage in store.keyword_search([word], k=1000))


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ingest` in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd,
        timeout=600,
    )


def free_port() -> int:
    """Return a free TCP port on the loopback address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Start `chroma run` on a free loopback port; yield the environment that points Newsdesk at it."""
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "chroma-server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/v2/heartbeat", process, what="chroma run")
        yield {
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(port),
            "NEWSDESK_DATA_DIR": str(tmp_path / "data"),
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server for the session (tests/postgres.py); the URL of its `postgres` database."""
    if server_programs() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; `make test` does)")
    with postgres_server(free_port()) as url:
        yield url


@pytest.fixture
def database_url(postgres: str) -> str:
    """A new, empty database on the session's PostgreSQL server, for one test."""
    name = f"newsdesk_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres.rsplit("/", 1)[0] + "/" + name


def write_articles(folder: Path, count: int, *, paragraphs: int = 3, prefix: str = "story") -> list[Path]:
    """Write `count` distinct dated articles with headlines into a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        body = "\n\n".join(
            f"Paragraph {p} of report {n}: the council of town {n} voted {p + n} times on the budget for "
            f"bridge number {n * 7 + p}, and officials said repairs would cost {n + 1} million dollars."
            for p in range(paragraphs)
        )
        path = folder / f"{prefix}-{n:03d}.md"
        path.write_text(
            f"---\ntitle: Town {n} votes on bridge budget\noutlet: The Test Gazette\n"
            f"published: 2024-03-{n % 28 + 1:02d}\n---\n{body}\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


DAM_WIRE = """MILLBROOK, Ore. — An earthen dam above the town of Millbrook gave way before dawn on Tuesday, \
sending a wall of water through the valley and forcing about 4,000 residents from their homes, state \
emergency officials said.

The Cedar Creek Dam, built in 1962 to hold irrigation water, failed after three days of heavy rain \
swelled its reservoir to a record level. Sheriff Dana Ortiz said two people were missing and rescue \
crews in boats had pulled 37 people from flooded houses along the river.

Governor Alice Brennan declared a state of emergency for Linn County and asked the National Guard to \
help with the evacuation. Shelters opened at the county fairgrounds and at Millbrook High School.

Engineers had inspected the dam in 2021 and rated it in fair condition, according to state records. \
The cause of the failure was not yet known, officials said."""
DAM_FOLLOW_UP = """MILLBROOK, Ore. — Investigators examining the collapse of the Cedar Creek Dam, \
which flooded Millbrook and forced thousands of residents to flee this week, said Thursday that \
a cracked spillway let floodwater eat away the earthen dam from inside.

State dam safety chief Raj Patel said the crack had been noted in the 2021 inspection but repairs \
were delayed for lack of money. The two people missing since Tuesday's flood were found alive on \
Wednesday, Sheriff Dana Ortiz said.

Residents began returning to Millbrook on Thursday to find mud-filled homes and washed-out roads."""
LIBRARY = """SPRINGFIELD — The city council voted 6 to 1 on Monday night to keep the public library open on \
Sundays, reversing a cut made two years ago to save money.

Library director Maria Gomez said Sunday hours were the most requested change in a survey of 2,300 \
residents. The extra hours will cost about $180,000 a year, paid from the city's reserve fund.

The new schedule begins in January, the council said."""
HERALD = "https://valleyherald.example/news/dam-failure"
COAST = "https://coastdaily.example/2026/11/10/oregon-dam"
HERALD_FOLLOW_UP = "https://valleyherald.example/news/dam-cause"
LIBRARY_URL = "https://springfield.example/library-sundays"


def news_article(folder: Path, name: str, *, title: str, outlet: str, day: str, url: str, body: str) -> Path:
    """Write one article with front matter into a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    front = f"---\ntitle: {title}\noutlet: {outlet}\npublished: {day}\nurl: {url}\n---\n"
    path.write_text(front + body + "\n", encoding="utf-8")
    return path


def write_ferry_story(folder: Path) -> None:
    """A ferry route's announcement: which island it serves, and, in its last sentence only, when it was
    announced (the day before its publish date)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ferry.md").write_text(
        "---\ntitle: New ferry route to Inishmore\noutlet: Coastal Post\npublished: 2024-05-08\n---\n"
        "The harbour board will run a new ferry route to Inishmore from the summer. "
        "The new ferry route will serve the island with two electric ferries built in Norway. "
        "The board announced it on Tuesday, May 7, after a year of talks.\n"
    )


def write_dam_story(folder: Path, *, follow_up: bool = True) -> None:
    """One wire story (a dam failure) as two outlets ran it, an unrelated local story the same day, and
    (with `follow_up`) a later article on the dam failure's cause from one of the outlets."""
    news_article(folder, "herald-dam.md", title="Dam failure floods Millbrook, thousands flee",
                 outlet="Valley Herald", day="2026-11-10", url=HERALD, body=DAM_WIRE)  # fmt: skip
    coast = DAM_WIRE.replace(
        "officials said.", "officials said, in the worst flood in the valley's history.", 1
    )
    news_article(folder, "coast-dam.md", title="Oregon dam collapse sends flood through town",
                 outlet="Coast Daily", day="2026-11-10", url=COAST,
                 body=coast + "\n\nThe Associated Press contributed to this report.")  # fmt: skip
    news_article(folder, "library.md", title="Springfield council keeps library open on Sundays",
                 outlet="Springfield Times", day="2026-11-10", url=LIBRARY_URL, body=LIBRARY)  # fmt: skip
    if follow_up:
        news_article(
            folder,
            "herald-dam-cause.md",
            title="Cracked spillway caused Millbrook dam collapse, investigators say",
            outlet="Valley Herald",
            day="2026-11-12",
            url=HERALD_FOLLOW_UP,
            body=DAM_FOLLOW_UP,
        )
