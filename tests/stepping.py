"""Ingest in a child process that stops itself (SIGSTOP) at each step of a write, so that a test can look at
the store at every step and choose where to kill it: after each commit to the catalog, and after each batch
of vectors is written to Chroma. Run as a script, it is `python -m ingest` with those stops."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
STEPS = "NEWSDESK_TEST_STEPS"  # the file the child names each step in, before it stops


class SteppedIngest:
    """`python -m ingest ARGS` that stops after each commit and each Chroma write until told to go on."""

    def __init__(self, args: list[str], env: dict[str, str], steps: Path) -> None:
        self.steps = steps
        self._out, self._err = steps.with_suffix(".out"), steps.with_suffix(".err")
        with self._out.open("w") as out, self._err.open("w") as err:  # files: a full pipe would block it
            self.process = subprocess.Popen(
                [sys.executable, str(HERE), *args], env={**env, STEPS: str(steps)}, stdout=out, stderr=err
            )
        self.ended: int | None = None  # the exit status, once it ended

    def step(self, *, timeout: float = 300) -> str | None:
        """Wait until the ingest stops at its next step; return the step ("commit" or "vectors"), or None
        when it ended instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.process.pid, os.WNOHANG | os.WUNTRACED)
            if pid and os.WIFSTOPPED(status):
                return self.steps.read_text().splitlines()[-1]
            if pid:
                self.ended = self.process.returncode = os.waitstatus_to_exitcode(status)
                return None
            time.sleep(0.002)
        self.kill()
        raise TimeoutError(f"ingest neither stopped nor ended within {timeout:.0f} s")

    def go_on(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL it where it stands."""
        os.kill(self.process.pid, signal.SIGKILL)
        os.waitpid(self.process.pid, 0)
        self.ended = self.process.returncode = -signal.SIGKILL

    def finish(self) -> int:
        """Let it run to its end; return its exit status."""
        while self.ended is None:
            self.go_on()
            self.step()
        return self.ended

    def output(self) -> tuple[str, str]:
        """What it printed: (stdout, stderr)."""
        return self._out.read_text(), self._err.read_text()


def _stop(step: str) -> None:
    with open(os.environ[STEPS], "a", encoding="utf-8") as steps:
        steps.write(step + "\n")
    os.kill(os.getpid(), signal.SIGSTOP)


class _SteppingConnection(sqlite3.Connection):
    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = super().execute(sql, *args)
        if sql == "COMMIT":
            _stop("commit")
        return cursor


def _run_ingest() -> None:
    import runpy

    from chromadb.api.models.Collection import Collection

    connect = sqlite3.connect
    sqlite3.connect = lambda *a, **k: connect(*a, **{"factory": _SteppingConnection, **k})  # type: ignore[assignment]
    upsert = Collection.upsert

    def stepping_upsert(self: Collection, *args: Any, **kwargs: Any) -> None:
        upsert(self, *args, **kwargs)
        _stop("vectors")

    Collection.upsert = stepping_upsert  # type: ignore[method-assign]
    sys.argv = ["ingest", *sys.argv[1:]]
    runpy.run_module("ingest", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _run_ingest()
