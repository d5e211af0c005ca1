"""Who may use a data folder, and when: a lock file between processes, and between the threads of one
process (the app's sessions) the lock of the shared database connection that every write and every read of
it takes."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.store.database import CatalogDatabase
from rag.store.records import StoreLockedError


@contextmanager
def hold_lock(path: Path, *, what: str, shared: bool = False, wait: bool = False) -> Iterator[None]:
    """Hold a lock file for the duration: exclusive, or `shared` with other holders of the shared lock;
    refusing at once (StoreLockedError, saying `what`) if another process holds it, or waiting for it
    when `wait`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 (held open for as long as the lock)
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StoreLockedError(f"{what} (held by process {holder}, lock file {path}).") from None
    if not shared:  # who holds it, for the message of a process refused
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
    """What every part of the store shares: the settings and the catalog's database
    (rag/store/database.py), used by one thread at a time."""

    config: Settings
    database: CatalogDatabase

    @property
    def _lock(self) -> threading.RLock:
        """Held for a consistent view across several reads (the database's own lock)."""
        return self.database.lock

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read on the shared connection, never in the middle of another thread's transaction."""
        return self.database.rows(sql, params)

    def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.database.row(sql, params)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.database.execute(sql, params)

    def _executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.database.executemany(sql, params)

    def _transaction(self) -> AbstractContextManager[None]:
        return self.database.transaction()

    def _in(self, values: Iterable[Any]) -> tuple[str, Any]:
        """`IN` and its one parameter, for a column that is one of these values (rag/store/database.py)."""
        return self.database.in_list(list(values))
