"""The catalog in PostgreSQL, for a store that several machines share: ingest workers and app replicas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from rag.store.database import Database
from rag.store.records import StoreError


class PostgresDatabase(Database):
    """One connection to a PostgreSQL database: outside `transaction()` each statement commits on its own;
    inside, PostgreSQL's default isolation (read committed) holds."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            self.connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            where = url.split("@")[-1]  # never the password
            raise StoreError(f"Could not connect to PostgreSQL at {where}: {error}".strip()) from error

    def in_list(self, values: Sequence[Any]) -> tuple[str, Any]:
        return "= ANY(?)", list(values)

    def close(self) -> None:
        self.connection.close()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.connection.execute(_placeholders(sql), params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        self.connection.execute(_placeholders(sql), params)

    def _executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), params)

    def _begin(self) -> None:
        self.connection.execute("BEGIN")

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        self.connection.execute("ROLLBACK")


def _placeholders(sql: str) -> str:
    """The store's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")
