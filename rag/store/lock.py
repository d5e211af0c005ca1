"""Who may use a data folder, and when: a lock file between processes, and between the threads of one
process (the app's sessions) a lock around the shared SQLite connection that every write and every
read of it takes."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.store.records import StoreLockedError


@contextmanager
def hold_lock(path: Path, *, what: str) -> Iterator[None]:
    """Hold an exclusive lock file for the duration, refusing at once if another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 (held open for as long as the lock)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StoreLockedError(f"{what} (held by process {holder}, lock file {path}).") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class Guarded:
    """What every part of the store shares: the settings and the catalog's SQLite connection, used by one
    thread at a time."""

    config: Settings
    db: sqlite3.Connection
    _lock: threading.RLock

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read on the shared connection, never in the middle of another thread's transaction."""
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
