"""The catalog's database behind one small interface, so that the store's SQL is written once where the
dialects agree and, where they do not, in the dialect's own module: `rag/store/sqlite.py` (a file in the
data folder, the default: nothing to install or run) and `rag/store/postgres.py` (a PostgreSQL server
shared by several machines).

SQL is written with `?` placeholders; a list of values to match is one parameter, `IN` the fragment
`in_list()` gives. Every read and write goes through `rows`/`execute`, a write's statements inside
`transaction()`; the connection is shared by the threads of one process (the app's sessions), one at a time.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

MAX_PARAMETERS = 30000  # of one statement: SQLite allows 32,766, PostgreSQL 65,535


class Database(ABC):
    """A connection to the catalog's database, used by one thread at a time."""

    dialect: str
    connection: Any  # the driver's own connection (sqlite3, psycopg)

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read, never in the middle of another thread's transaction."""
        with self.lock:
            return self._fetch(sql, params)

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.lock:
            self._execute(sql, params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if params:
            with self.lock:
                self._executemany(sql, params)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in as few statements as the parameters allow: what a table's triggers count is
        counted once a statement."""
        listed = ", ".join(f'"{column}"' for column in columns)
        one = "(" + ", ".join("?" for _ in columns) + ")"
        step = max(1, MAX_PARAMETERS // max(1, len(columns)))
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            values = ", ".join(one for _ in part)
            self.execute(f"INSERT INTO {table} ({listed}) VALUES {values}", [v for row in part for v in row])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the statements inside as one transaction, which takes the database's write lock at once:
        all of them are committed, or none (an exception rolls them back and is raised again)."""
        with self.lock:
            self._begin()
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self._commit()

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """The columns of a table, in order (none when there is no such table)."""

    @abstractmethod
    def in_list(self, values: Sequence[Any]) -> tuple[str, Any]:
        """The SQL that follows a column to test it against these values, and its one parameter."""

    @abstractmethod
    def listed(self, values: Sequence[str]) -> tuple[str, Any]:
        """A FROM item naming `listed` the rows (value, position) of these strings in order, and its one
        parameter: a statement joins to it and orders by position, so it can stop at the first few that
        pass its filter instead of returning all of them."""

    @abstractmethod
    def close(self) -> None: ...

    # Each dialect's own
    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> None: ...

    @abstractmethod
    def _executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...


class CatalogDatabase(Database):
    """A database that holds the store's catalog: its tables and its keyword and headline indexes, in the
    dialect's own SQL. Rows are numbered by publish day (rag/store/periods.py): a search names the range of
    row ids it reads."""

    @abstractmethod
    def writer_lock(self, *, what: str, exclusive: bool) -> AbstractContextManager[None]:
        """The lock every writer of the store holds while it runs: shared by ingest runs, which may run at
        once (each waits for its `write_turn`), and `exclusive` for what must run alone (prune, regroup,
        rebuild); refusing at once (StoreLockedError, saying `what`) when another process holds it so."""

    @abstractmethod
    def write_turn(self) -> AbstractContextManager[None]:
        """The lock of one journalled write, waited for: writers take turns to write, so the write journal
        (rag/store/writes.py) is only ever the holder's, and what a writer that died left in it is found by
        the next one to take its turn."""

    @abstractmethod
    def create_tables(self) -> None:
        """Make the catalog's tables, or bring an older store's up to date."""

    @abstractmethod
    def drop_tables(self) -> None:
        """Drop every table of the catalog (what ingest keeps beside it too)."""

    def settle(self) -> None:
        """Bring the database's own statistics and upkeep up to date after a bulk load."""

    @abstractmethod
    def check_indexes(self) -> None:
        """Raise StoreError if the keyword or headline index disagrees with the rows it indexes."""

    @abstractmethod
    def renumber_rows(self) -> None:
        """Number the rows of a store made before rows were numbered by publish day, in one transaction."""

    @abstractmethod
    def match_terms(self, terms: Sequence[str]) -> list[str]:
        """The query words as the keyword index matches them, one each, none read as an operator."""

    @abstractmethod
    def common_terms(self, terms: Sequence[str], ranges: Sequence[tuple[int, int]], limit: int) -> set[str]:
        """The terms that more than `limit` passages of these ranges of rows match: each counted no further
        than that, so a common word costs what `limit` passages cost, not what it is found in."""

    @abstractmethod
    def keyword_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        pool: int, k: int, title_weight: float,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        """The k passages (`columns`, then the score) of a range of rows that best match any of the terms
        (BM25, the headline weighing `title_weight` times the text), ranked among the `pool` best matches
        (-1: all) before `where` (SQL after WHERE TRUE, and its parameters) filters them."""

    @abstractmethod
    def keyword_scores(
        self, terms: Sequence[str], chunk_ids: Sequence[str], *, title_weight: float
    ) -> dict[str, float]:
        """The BM25 score that `keyword_rows` gives each of these passages that matches any of the terms,
        at a cost that follows how many they are, not how many passages match."""

    @abstractmethod
    def headline_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        articles: int, k: int,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        """Up to k passages (`columns`, then the score) of the `articles` articles of a range of rows whose
        headline best matches any of the terms (BM25), best first, each article's passages in order."""
