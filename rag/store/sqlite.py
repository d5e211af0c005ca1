"""The catalog in an SQLite file in the data folder: the default, with nothing to install or run. Its
keyword and headline indexes are FTS5 tables (porter stemmer, BM25), their rows numbered by publish day
(rag/store/periods.py) so a search of some periods reads only their rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rag.store.database import CatalogDatabase
from rag.store.fts5 import Scorer
from rag.store.lock import hold_lock
from rag.store.periods import DAY_BITS
from rag.store.records import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    title TEXT, outlet TEXT, author TEXT, url TEXT, published_at TEXT, published_ts REAL,
    chunk_count INTEGER NOT NULL,
    duplicate_of TEXT,
    ingested_at TEXT NOT NULL,
    updated_at TEXT,
    focus REAL,
    story_id TEXT,
    copy_of TEXT,
    minhash BLOB
);
CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash);
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    title TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_article ON passages(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    title, text, content='passages', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS passages_ai AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS passages_ad AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE VIRTUAL TABLE IF NOT EXISTS headlines_fts USING fts5(
    title, content='articles', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS articles_ai AFTER INSERT ON articles BEGIN
    INSERT INTO headlines_fts(rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO headlines_fts(headlines_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
END;
CREATE TABLE IF NOT EXISTS pending (article_id TEXT PRIMARY KEY, periods TEXT);
-- Each earlier version of an article that changed under its id: its hash and when it was stored.
CREATE TABLE IF NOT EXISTS article_versions (
    article_id TEXT NOT NULL, content_hash TEXT NOT NULL, ingested_at TEXT NOT NULL, updated_at TEXT
);
CREATE INDEX IF NOT EXISTS article_versions_article ON article_versions(article_id);
CREATE TABLE IF NOT EXISTS ingest_runs (
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL, new INTEGER NOT NULL, changed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_story ON articles(story_id);
CREATE UNIQUE INDEX IF NOT EXISTS ingest_runs_started ON ingest_runs(started_at);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published_ts);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE INDEX IF NOT EXISTS articles_ingested ON articles(ingested_at);
-- What each period holds, kept by the writes themselves, so no question counts the store.
CREATE TABLE IF NOT EXISTS periods (
    period TEXT PRIMARY KEY, articles INTEGER NOT NULL, passages INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS periods_ai AFTER INSERT ON articles BEGIN
    INSERT INTO periods VALUES (
        CASE WHEN new.published_ts IS NULL THEN 'undated'
             ELSE strftime('%Y-%m', new.published_ts, 'unixepoch') END,
        1, new.chunk_count
    ) ON CONFLICT (period) DO UPDATE SET articles = articles + 1, passages = passages + excluded.passages;
END;
CREATE TABLE IF NOT EXISTS vector_splits (shelf TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS outlets (outlet TEXT PRIMARY KEY, articles INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS outlets_ai AFTER INSERT ON articles WHEN new.outlet IS NOT NULL BEGIN
    INSERT INTO outlets VALUES (new.outlet, 1) ON CONFLICT (outlet) DO UPDATE SET articles = articles + 1;
END;
CREATE TRIGGER IF NOT EXISTS outlets_ad AFTER DELETE ON articles WHEN old.outlet IS NOT NULL BEGIN
    UPDATE outlets SET articles = articles - 1 WHERE outlet = old.outlet;
END;
CREATE TRIGGER IF NOT EXISTS periods_ad AFTER DELETE ON articles BEGIN
    UPDATE periods SET articles = articles - 1, passages = passages - old.chunk_count
    WHERE period = CASE WHEN old.published_ts IS NULL THEN 'undated'
                        ELSE strftime('%Y-%m', old.published_ts, 'unixepoch') END;
END;
"""

PERIOD_SQL = (  # the period of an article (rag/store/periods.py)
    "CASE WHEN published_ts IS NULL THEN 'undated' ELSE strftime('%Y-%m', published_ts, 'unixepoch') END"
)
_DAY = (  # the number of an article's publish day, as row ids use it (rag/store/periods.py)
    "CASE WHEN published_ts IS NULL THEN 0 WHEN published_ts < 86400 THEN 1 "
    "ELSE CAST(published_ts / 86400 AS INTEGER) END"
)


class SQLiteDatabase(CatalogDatabase):
    """One connection to the data folder's catalog file, in write-ahead-log mode (readers never wait for
    the writer), with transactions begun by hand."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self._scorer: Scorer | None = None

    def writer_lock(self, *, what: str, exclusive: bool) -> AbstractContextManager[None]:
        return hold_lock(self.path.parent / ".ingest.lock", what=what, shared=not exclusive)  # in the folder

    def write_turn(self) -> AbstractContextManager[None]:
        return hold_lock(self.path.parent / ".write.lock", what="", wait=True)

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.rows(f"PRAGMA table_info({table})")]

    def in_list(self, values: Sequence[Any]) -> tuple[str, Any]:
        return "IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    def listed(self, values: Sequence[str]) -> tuple[str, Any]:
        return "(SELECT value, key AS position FROM json_each(?)) AS listed", json.dumps(list(values))

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
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

    # The tables

    def create_tables(self) -> None:
        had_headlines = self._has_table("headlines_fts")
        had_periods = self._has_table("periods")
        had_outlets = self._has_table("outlets")
        self._add_missing_columns()
        self.connection.executescript(SCHEMA)
        if not had_headlines:  # a store from before the headline index: index the headlines it holds
            self.execute("INSERT INTO headlines_fts(headlines_fts) VALUES ('rebuild')")
        if not had_periods:  # a store from before periods were kept: count what it holds
            counts = f"SELECT {PERIOD_SQL}, count(*), sum(chunk_count) FROM articles GROUP BY 1"
            self.execute(f"INSERT INTO periods {counts}")
        if not had_outlets:  # a store from before outlets were kept: count them
            counted = "SELECT outlet, count(*) FROM articles WHERE outlet IS NOT NULL GROUP BY 1"
            self.execute(f"INSERT INTO outlets {counted}")

    def drop_tables(self) -> None:
        virtual = "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        plain = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        for query in (virtual, plain):  # a virtual table takes its own tables with it
            for (table,) in self.rows(query):
                self.execute(f'DROP TABLE IF EXISTS "{table}"')

    def _has_table(self, name: str) -> bool:
        return self.row("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)) is not None

    def _add_missing_columns(self) -> None:
        """Bring a store made before a column was added up to date (added columns start empty)."""
        pending = {row[1] for row in self.rows("PRAGMA table_info(pending)")}
        if pending and "periods" not in pending:
            self.execute("ALTER TABLE pending ADD COLUMN periods TEXT")
        if not self._has_table("articles"):
            return
        present = {row[1] for row in self.rows("PRAGMA table_info(articles)")}
        added = (
            ("updated_at", "TEXT"), ("focus", "REAL"), ("story_id", "TEXT"), ("copy_of", "TEXT"),
            ("minhash", "BLOB"),
        )  # fmt: skip
        for column, kind in added:
            if column not in present:
                self.execute(f"ALTER TABLE articles ADD COLUMN {column} {kind}")

    def renumber_rows(self) -> None:
        """Give the rows of a store made before the layout by time their row ids by publish day, and index
        them again (in one transaction: killed, the store is as it was)."""
        articles = (
            f"SELECT rowid AS old, (day << {DAY_BITS}) + row_number() OVER "
            "(PARTITION BY day ORDER BY published_ts, rowid) - 1 AS new, article_id "
            f"FROM (SELECT rowid, published_ts, article_id, {_DAY} AS day FROM articles)"
        )
        passages = (
            f"SELECT p.rowid AS old, (r.new >> {DAY_BITS} << {DAY_BITS}) + row_number() OVER "
            f"(PARTITION BY r.new >> {DAY_BITS} ORDER BY r.new, p.chunk_index) - 1 AS new "
            "FROM passages p JOIN temp.renumber_articles r ON r.article_id = p.article_id"
        )
        with self.transaction():
            self.execute("DELETE FROM passages WHERE article_id NOT IN (SELECT article_id FROM articles)")
            for table, numbering in (("articles", articles), ("passages", passages)):
                mapping = f"temp.renumber_{table}"
                self.execute(f"DROP TABLE IF EXISTS {mapping}")
                self.execute(f"CREATE TEMP TABLE renumber_{table} AS {numbering}")
                self.execute(f"CREATE INDEX temp.renumber_{table}_old ON renumber_{table}(old)")
                # Negative first, so that no new id meets an old one on the way.
                self.execute(f"UPDATE {table} SET rowid = -rowid - 1")
                self.execute(
                    f"UPDATE {table} SET rowid = (SELECT new FROM {mapping} WHERE old = -{table}.rowid - 1)"
                )
            for index in ("passages_fts", "headlines_fts"):
                self.execute(f"INSERT INTO {index}({index}) VALUES ('rebuild')")
            self.execute("DROP TABLE temp.renumber_articles")
            self.execute("DROP TABLE temp.renumber_passages")

    def check_indexes(self) -> None:
        for index in ("passages_fts", "headlines_fts"):
            try:
                self.execute(f"INSERT INTO {index}({index}) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as error:
                raise StoreError(f"The keyword index {index} disagrees with its rows: {error}") from error

    # Keyword and headline search (FTS5)

    def match_terms(self, terms: Sequence[str]) -> list[str]:
        return ['"' + term.replace('"', "") + '"' for term in terms]  # phrases: no word read as an operator

    def common_terms(self, terms: Sequence[str], ranges: Sequence[tuple[int, int]], limit: int) -> set[str]:
        common = set()
        for term in terms:
            count = 0
            for rows in ranges:
                found = self.row(
                    "SELECT count(*) FROM (SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? "
                    "AND rowid BETWEEN ? AND ? LIMIT ?)",
                    (term, *rows, limit + 1 - count),
                )
                count += int(found[0]) if found else 0
                if count > limit:
                    common.add(term)
                    break
        return common

    def keyword_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        pool: int, k: int, title_weight: float,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        clauses, params = where
        return self.rows(
            f"""SELECT {columns}, f.score
                FROM (SELECT rowid, -bm25(passages_fts, ?, 1.0) AS score FROM passages_fts
                      WHERE passages_fts MATCH ? AND rowid BETWEEN ? AND ?
                      ORDER BY score DESC LIMIT ?) AS f
                JOIN passages p ON p.rowid = f.rowid
                JOIN articles a ON a.article_id = p.article_id
                WHERE TRUE {clauses}
                ORDER BY f.score DESC LIMIT ?""",
            (title_weight, " OR ".join(terms), *rows, pool, *params, k),
        )

    def keyword_scores(
        self, terms: Sequence[str], chunk_ids: Sequence[str], *, title_weight: float
    ) -> dict[str, float]:
        """Scored as FTS5 would score them, without ranking every match (rag/store/fts5.py)."""
        test, ids = self.in_list(chunk_ids)
        rows = self.rows(f"SELECT chunk_id, title, text FROM passages WHERE chunk_id {test}", (ids,))
        if self._scorer is None:
            self._scorer = Scorer(self.connection, "passages_fts")
        return self._scorer.scores(terms, rows, title_weight=title_weight)

    def headline_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        articles: int, k: int,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        clauses, params = where
        return self.rows(
            f"""SELECT {columns}, h.score
                FROM (SELECT rowid, -bm25(headlines_fts) AS score FROM headlines_fts
                      WHERE headlines_fts MATCH ? AND rowid BETWEEN ? AND ?
                      ORDER BY score DESC LIMIT ?) AS h
                JOIN articles a ON a.rowid = h.rowid
                JOIN passages p ON p.article_id = a.article_id
                WHERE TRUE {clauses}
                ORDER BY h.score DESC, p.chunk_index LIMIT ?""",
            (" OR ".join(terms), *rows, articles, *params, k),
        )
