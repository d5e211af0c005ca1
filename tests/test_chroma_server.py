"""Ingest and a reader in two processes through a real `chroma run` server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, write_articles

pytestmark = pytest.mark.slow

READER = """
import json, sys, time
from rag.config import load_settings
from rag.embeddings import MiniLMEmbedding
from rag.store import open_store

model = MiniLMEmbedding()
query = model.get_query_embedding("town council vote on the bridge budget")
seen, counts, deadline = set(), [], time.monotonic() + 240
with open_store(load_settings()) as store:
    while time.monotonic() < deadline:
        seen |= {hit.article_id for hit in store.vector_search(query, k=50)}
        counts.append(len(seen))
        if len(counts) == 1:
            print("ready", flush=True)
        if len(seen) >= int(sys.argv[1]):
            break
        time.sleep(0.2)
print(json.dumps({"seen": sorted(seen), "counts": counts}))
"""


def test_ingest_and_reader_share_a_chroma_server(chroma_server: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **chroma_server}
    first = subprocess.run(
        [sys.executable, "-m", "ingest", str(SEEDS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr

    folder = tmp_path / "news"
    write_articles(folder, 12, paragraphs=3)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, "13"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready", reader.stderr.read() if reader.stderr else ""
    writer = subprocess.run(
        [sys.executable, "-m", "ingest", str(folder)], env=env, capture_output=True, text=True, timeout=300
    )
    out, err = reader.communicate(timeout=300)

    assert writer.returncode == 0, writer.stderr
    assert "12 new" in writer.stdout
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert result["counts"][0] == 1, "before the second ingest the reader sees only the seed article"
    assert set(result["seen"]) >= {f"news/story-{n:03d}.md" for n in range(12)}


def test_store_made_through_a_server_refuses_embedded_use(chroma_server: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **chroma_server}
    first = subprocess.run(
        [sys.executable, "-m", "ingest", str(SEEDS)], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    embedded = {k: v for k, v in env.items() if k not in ("CHROMA_HOST", "CHROMA_PORT")}
    again = subprocess.run(
        [sys.executable, "-m", "ingest", str(SEEDS)], env=embedded, capture_output=True, text=True
    )
    assert again.returncode == 2
    assert "chroma server" in again.stderr and "CHROMA_HOST" in again.stderr
