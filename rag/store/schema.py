"""The catalog's tables, how a store from an earlier Newsdesk is brought up to date, and what a store
records about how it was built (embedding model, passage size, where its vectors live), refusing to mix."""

from __future__ import annotations

import sqlite3
from typing import Any

from rag.store.periods import DAY_BITS
from rag.store.records import ChunkingMismatch, EmbeddingModelMismatch, StoreError
from rag.store.vectors import Vectors

SCHEMA_VERSION = "4"  # bump when the tables change; an older store is refused with how to rebuild

_SCHEMA = """
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
LAYOUT = "shelves"  # row ids by publish day, vectors on shelves by time (rag/store/periods.py)


class Schema(Vectors):
    """Creating, upgrading and checking the catalog of a data folder."""

    model_name: str
    dimension: int
    _client: Any  # the Chroma client
    db: sqlite3.Connection  # the catalog file's connection, for what only SQLite has (its tables' schema)

    def _create_tables(self, *, rebuild: bool) -> None:
        """Make the tables (after emptying the folder's catalog and collection, for `rebuild`), bring an
        older store's up to date, and refuse a store built in a way these settings would not build it."""
        if rebuild:
            self._drop_everything()
        had_headlines = self._has_table("headlines_fts")
        had_periods = self._has_table("periods")
        had_outlets = self._has_table("outlets")
        self._add_missing_columns()
        self.db.executescript(_SCHEMA)
        if not had_headlines:  # a store from before the headline index: index the headlines it holds
            self._execute("INSERT INTO headlines_fts(headlines_fts) VALUES ('rebuild')")
        if not had_periods:  # a store from before periods were kept: count what it holds
            counts = f"SELECT {PERIOD_SQL}, count(*), sum(chunk_count) FROM articles GROUP BY 1"
            self._execute(f"INSERT INTO periods {counts}")
        if not had_outlets:  # a store from before outlets were kept: count them
            counted = "SELECT outlet, count(*) FROM articles WHERE outlet IS NOT NULL GROUP BY 1"
            self._execute(f"INSERT INTO outlets {counted}")
        self._check_model()

    def _drop_everything(self) -> None:
        """Drop every table of the catalog file (what ingest keeps there too, such as the validators of
        feeds fetched: a rebuilt store must fetch every feed in full) and the Chroma collection."""
        virtual = "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        plain = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        for query in (virtual, plain):  # a virtual table takes its own tables with it
            for (table,) in self.db.execute(query).fetchall():
                self._execute(f'DROP TABLE IF EXISTS "{table}"')
        self._drop_vectors()

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None

    def _add_missing_columns(self) -> None:
        """Bring a store made before a column was added up to date (added columns start empty)."""
        pending = {row[1] for row in self.db.execute("PRAGMA table_info(pending)")}
        if pending and "periods" not in pending:
            self._execute("ALTER TABLE pending ADD COLUMN periods TEXT")
        if not self._has_table("articles"):
            return
        present = {row[1] for row in self.db.execute("PRAGMA table_info(articles)")}
        added = (
            ("updated_at", "TEXT"), ("focus", "REAL"), ("story_id", "TEXT"), ("copy_of", "TEXT"),
            ("minhash", "BLOB"),
        )  # fmt: skip
        for column, kind in added:
            if column not in present:
                self._execute(f"ALTER TABLE articles ADD COLUMN {column} {kind}")

    def _check_model(self) -> None:
        stored = dict(self._rows("SELECT key, value FROM meta"))
        chunking = {
            "chunk_tokens": str(self.config.chunk_tokens),
            "chunk_overlap": str(self.config.chunk_overlap),
        }
        if not stored:
            self._execute(
                "INSERT INTO meta VALUES ('embedding_model', ?), ('embedding_dimension', ?), "
                "('schema_version', ?), ('vectors', ?), ('layout', ?), ('focus', 'kept')",
                (self.model_name, str(self.dimension), SCHEMA_VERSION, self._vector_home(), LAYOUT),
            )
        elif stored.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"The store in {self.config.data_dir} was made by an older Newsdesk. "
                "Rebuild it with `python -m ingest --rebuild PATH ...`."
            )
        self._refuse_other_vectors(stored.get("vectors"))
        self.refuse_mismatch(stored.get("embedding_model"), stored.get("embedding_dimension"))
        # A store from before the passage size was recorded was cut with the settings it is opened with.
        self._executemany(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING", list(chunking.items())
        )
        recorded = dict(self._rows("SELECT key, value FROM meta WHERE key LIKE 'chunk_%'"))
        if recorded != chunking:
            raise ChunkingMismatch(
                f"The passages in {self.config.data_dir} were cut to {recorded['chunk_tokens']} tokens "
                f"with {recorded['chunk_overlap']} shared, but Newsdesk is set to {chunking['chunk_tokens']} "
                f"and {chunking['chunk_overlap']} (NEWSDESK_CHUNK_TOKENS, NEWSDESK_CHUNK_OVERLAP). Mixing "
                "passage sizes in one store would rank them unevenly. Rebuild the store with "
                "`python -m ingest --rebuild PATH ...`, or set them back."
            )

    def _renumber_rows(self) -> None:
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
        with self._transaction():
            self._execute("DELETE FROM passages WHERE article_id NOT IN (SELECT article_id FROM articles)")
            for table, numbering in (("articles", articles), ("passages", passages)):
                mapping = f"temp.renumber_{table}"
                self._execute(f"DROP TABLE IF EXISTS {mapping}")
                self._execute(f"CREATE TEMP TABLE renumber_{table} AS {numbering}")
                self._execute(f"CREATE INDEX temp.renumber_{table}_old ON renumber_{table}(old)")
                # Negative first, so that no new id meets an old one on the way.
                self._execute(f"UPDATE {table} SET rowid = -rowid - 1")
                self._execute(
                    f"UPDATE {table} SET rowid = (SELECT new FROM {mapping} WHERE old = -{table}.rowid - 1)"
                )
            for index in ("passages_fts", "headlines_fts"):
                self._execute(f"INSERT INTO {index}({index}) VALUES ('rebuild')")
            self._execute("DROP TABLE temp.renumber_articles")
            self._execute("DROP TABLE temp.renumber_passages")

    def _vector_home(self) -> str:
        """Where this store's vectors live: the catalog must never describe vectors kept elsewhere."""
        return "chroma server" if self.config.uses_chroma_server else "embedded"

    def _refuse_other_vectors(self, home: str | None) -> None:
        if home is None or home == self._vector_home():
            return
        how = (
            "set CHROMA_HOST and CHROMA_PORT to that server (`make run` starts one on 127.0.0.1:8765)"
            if home == "chroma server"
            else "unset CHROMA_HOST and CHROMA_PORT"
        )
        raise StoreError(
            f"The articles in {self.config.data_dir} have their vectors in the {home} Chroma, but Newsdesk "
            f"is set to use the {self._vector_home()} one: {how}, or use another NEWSDESK_DATA_DIR."
        )

    def refuse_mismatch(self, model: object, dimension: object) -> None:
        """Refuse vectors made by another embedding model than the one configured (None: not recorded)."""
        if model is None or (model == self.model_name and str(dimension) == str(self.dimension)):
            return
        raise EmbeddingModelMismatch(
            f"The store in {self.config.data_dir} was built with the embedding model {model} "
            f"({dimension} dimensions), but Newsdesk is set to {self.model_name} ({self.dimension}). "
            "Mixing them would give wrong results. Rebuild the store with `python -m ingest --rebuild`, "
            "or set NEWSDESK_EMBEDDING_BACKEND back to the model it was built with."
        )
