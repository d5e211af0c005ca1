"""The catalog's database, the same through both dialects: SQLite in the data folder and a real PostgreSQL
server. What a write does is all there or not there at all, a list of values matches exactly those values,
and what ingest remembers of a web server's answers survives the connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.web import FetchState
from rag.store.database import Database
from rag.store.postgres import PostgresDatabase
from rag.store.records import StoreError
from rag.store.sqlite import SQLiteDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Open connections to one database of each dialect (each test gets a new database)."""
    opened: list[Database] = []
    if request.param == "sqlite":
        make = lambda: SQLiteDatabase(tmp_path / "newsdesk.sqlite")  # noqa: E731
    else:
        url = request.getfixturevalue("database_url")
        make = lambda: PostgresDatabase(url)  # noqa: E731

    def open_one() -> Database:
        opened.append(make())
        return opened[-1]

    yield open_one
    for database in opened:
        database.close()


def test_a_failed_write_leaves_nothing_and_says_why(connect) -> None:  # type: ignore[no-untyped-def]
    db = connect()
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    with db.transaction():
        db.execute("INSERT INTO notes VALUES (?, ?)", (1, "kept"))
    with pytest.raises(ValueError, match="half way"), db.transaction():
        db.executemany("INSERT INTO notes VALUES (?, ?)", [(2, "lost"), (3, "lost too")])
        raise ValueError("killed half way")
    other = connect()  # what another process sees
    assert other.rows("SELECT id, text FROM notes ORDER BY id") == [(1, "kept")]


def test_a_write_is_seen_by_others_only_once_committed(connect) -> None:  # type: ignore[no-untyped-def]
    writer, reader = connect(), connect()
    writer.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    with writer.transaction():
        writer.execute("INSERT INTO notes VALUES (?, ?)", (1, "in progress"))
        assert reader.rows("SELECT id FROM notes") == []
    assert reader.rows("SELECT id FROM notes") == [(1,)]


def test_a_list_of_values_matches_exactly_those(connect) -> None:  # type: ignore[no-untyped-def]
    db = connect()
    db.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, pct TEXT)")
    names = ["harbor", "it's", 'say "no"', "50% off", "what?"]
    db.executemany("INSERT INTO notes VALUES (?, ?)", [(n, f"{i}%") for i, n in enumerate(names)])
    for wanted in (names[1:4], [], ["elsewhere"], names):
        test, values = db.in_list(wanted)
        found = db.rows(f"SELECT id FROM notes WHERE id {test} ORDER BY id", (values,))
        assert [row[0] for row in found] == sorted(wanted if wanted != ["elsewhere"] else [])
    assert db.row("SELECT pct FROM notes WHERE id = ?", ("50% off",)) == ("3%",)


def test_what_a_server_said_is_remembered_and_replaced(connect) -> None:  # type: ignore[no-untyped-def]
    state = FetchState(connect())
    assert state.validators("https://news.example/feed") == (None, None)
    state.save({"https://news.example/feed": ('"v1"', "Mon, 30 Nov 2026 08:00:00 GMT")})
    state.save({"https://news.example/feed": ('"v2"', None), "https://news.example/b": (None, "Tue")})
    again = FetchState(connect())  # the next run
    assert again.validators("https://news.example/feed") == ('"v2"', None)
    assert again.validators("https://news.example/b") == (None, "Tue")


def test_an_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="Could not connect to PostgreSQL at 127.0.0.1:9/") as raised:
        PostgresDatabase("postgresql://newsdesk:s3cret@127.0.0.1:9/news")
    assert "s3cret" not in str(raised.value)
