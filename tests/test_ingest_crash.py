"""Ingest killed with SIGKILL at several points converges to the state of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, snapshot, write_articles
from rag.config import Settings

pytestmark = pytest.mark.slow


def start_ingest(folder: Path, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", str(folder)],
        # Small write groups, so that kills land between writes as well as during them.
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NEWSDESK_DATA_DIR": str(data_dir),
            "NEWSDESK_WRITE_GROUP": "8",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_several_points_then_rerun_equals_uninterrupted_run(tmp_path: Path) -> None:
    folder = tmp_path / "news"
    write_articles(folder, 24, paragraphs=4)

    reference_dir = tmp_path / "reference"
    started = time.monotonic()
    assert run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(reference_dir)}).returncode == 0
    full_run = time.monotonic() - started
    reference = snapshot(Settings(data_dir=reference_dir))

    data_dir = tmp_path / "killed"
    kills = 0
    # Start-up, the first writes, the middle and the end of the embedding phase.
    for fraction in (0.35, 0.6, 0.8, 0.95):
        process = start_ingest(folder, data_dir)
        time.sleep(full_run * fraction)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2, f"ingest finished before it could be killed ({full_run:.1f} s per run)"

    final = run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(data_dir)})
    assert final.returncode == 0, final.stderr
    state = snapshot(Settings(data_dir=data_dir))
    assert state.catalog == reference.catalog
    assert state.vectors == reference.vectors, "duplicate or orphan passages in Chroma"
    assert state.passages == reference.passages, "keyword index differs"
    assert state.pending == []

    rerun = run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(data_dir)})
    assert "0 new, 0 changed, 24 unchanged" in rerun.stdout
