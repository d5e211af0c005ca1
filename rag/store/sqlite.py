"""The catalog in an SQLite file in the data folder: the default, with nothing to install or run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.store.database import Database


class SQLiteDatabase(Database):
    """One connection to the data folder's catalog file, in write-ahead-log mode (readers never wait for
    the writer), with transactions begun by hand."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")

    def in_list(self, values: Sequence[Any]) -> tuple[str, Any]:
        return "IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    def close(self) -> None:
        self.connection.close()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        self.connection.execute(sql, params)

    def _executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(sql, params)

    def _begin(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")  # the write lock at once: no upgrade to fail later

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        self.connection.execute("ROLLBACK")
