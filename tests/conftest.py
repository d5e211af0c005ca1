"""Shared fixtures: an isolated data folder, the real embedding model, and ways to run ingest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.pipeline import Summary, ingest_paths
from rag.config import Settings
from rag.embeddings import MiniLMEmbedding
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


@pytest.fixture
def config(tmp_path: Path) -> Settings:
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

    catalog: dict[str, tuple[str, int, str | None]]  # id -> (content hash, passages, duplicate of)
    vectors: list[str]  # chunk ids in Chroma
    passages: list[str]  # chunk ids in the keyword index
    pending: list[str]

    def vectors_of(self, article_id: str) -> list[str]:
        return [v for v in self.vectors if v.startswith(f"{article_id}::")]


def snapshot(config: Settings) -> State:
    """Read the whole store, checking that the keyword index matches its passages."""
    with open_store(config) as store:
        store.db.execute("INSERT INTO passages_fts(passages_fts) VALUES ('integrity-check')")
        return State(
            catalog={
                e.article_id: (e.content_hash, e.chunk_count, e.duplicate_of)
                for e in store.articles().values()
            },
            vectors=sorted(store.collection.get(include=[])["ids"]),
            passages=sorted(row[0] for row in store.db.execute("SELECT chunk_id FROM passages")),
            pending=[row[0] for row in store.db.execute("SELECT article_id FROM pending")],
        )


def keyword_hits(config: Settings, query: str) -> list[str]:
    """Return the chunk ids the keyword index finds for a query."""
    with open_store(config) as store:
        rows = store.db.execute(
            "SELECT p.chunk_id FROM passages_fts JOIN passages p ON p.rowid = passages_fts.rowid "
            "WHERE passages_fts MATCH ?",
            (query,),
        )
        return sorted(row[0] for row in rows)


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
