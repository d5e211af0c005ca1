"""The store: Chroma vectors, an SQLite FTS5 keyword index and the article catalog, kept in step.

This is the only module that imports chromadb. The catalog (SQLite) is the record of what is stored:
an article counts as stored once its catalog row is committed. Chroma and SQLite cannot share a
transaction, so every write is journalled: article ids are marked pending before their vectors are
written and unmarked in the transaction that commits their catalog rows. A run that was killed leaves
pending ids behind, and `recover()` removes whatever those articles left, so the next run writes them
again from scratch.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from rag.config import RetrievalConfig, Settings
from rag.documents import Article, Chunk, StoryLink, chunk_id

SCHEMA_VERSION = "4"  # bump when the tables change; an older store is refused with how to rebuild
KEYWORD_POOL = (4, 32)  # keyword hits ranked per hit wanted before the filter, tried in turn, then all
VECTOR_WIDEN = (8, 64)  # nearest passages fetched per hit wanted before filtering, tried in turn
UNKNOWN_TS = -1e12  # published_ts of an article whose date is unknown, in Chroma metadata
FOCUS_MIN_PASSAGES = 3  # an article's focus is measured from this many passages up (shorter ones keep to one)

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
CREATE TABLE IF NOT EXISTS pending (article_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS fetch_state (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, checked_at TEXT);
CREATE TABLE IF NOT EXISTS ingest_runs (
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL, new INTEGER NOT NULL, changed INTEGER NOT NULL
);
"""


class StoreError(RuntimeError):
    """A store problem the user can act on; the message says what to do."""


class StoreLockedError(StoreError):
    """Another process holds the data folder."""


class EmbeddingModelMismatch(StoreError):
    """The store was built with another embedding model."""


class ChunkingMismatch(StoreError):
    """The store's passages were cut to another size or overlap than the settings ask for."""


@dataclass(frozen=True)
class StoredArticle:
    """A catalog row: what is stored for one article."""

    article_id: str
    source: str
    content_hash: str
    text_hash: str
    title: str | None
    outlet: str | None
    author: str | None
    url: str | None
    published_at: str | None
    chunk_count: int
    duplicate_of: str | None
    ingested_at: str
    updated_at: str | None = None  # when the outlet last updated it (feed entries), ISO 8601
    story_id: str | None = None
    copy_of: str | None = None


@dataclass(frozen=True)
class StoryMember:
    """A stored article as story grouping compares it: its story and the MinHash of its text."""

    article_id: str
    story_id: str
    copy_of: str | None
    published: date | None
    signature: bytes | None


@dataclass(frozen=True)
class Report:
    """One article of a story: who reported it, when, and where to read it."""

    article_id: str
    story_id: str
    title: str | None
    outlet: str | None
    published_at: str | None
    url: str | None
    ingested_at: str


@dataclass(frozen=True)
class CorpusOverview:
    """The corpus at a glance."""

    articles: int
    passages: int
    outlets: list[str]
    earliest: str | None  # ISO publish dates
    latest: str | None
    undated: int
    last_ingest: str | None


@dataclass(frozen=True)
class PassageHit:
    """A passage found by a search, with the metadata answers cite."""

    chunk_id: str
    text: str
    score: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ArticleWrite:
    """One article to store, with its passages and their vectors."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: Sequence[Sequence[float]]
    story: StoryLink | None = None


def chunk_metadata(article: Article, chunk: Chunk) -> dict[str, Any]:
    """Return the metadata stored with a passage: all that answers and filters need, None left out."""
    published = article.published_at
    metadata: dict[str, Any] = {
        "article_id": article.article_id,
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "content_hash": article.content_hash,
        "title": article.title,
        "outlet": article.outlet,
        "author": article.author,
        "url": article.url,
        "published_at": article.published_iso,
        # Chroma cannot match a missing key, so an unknown date is a far-past sentinel: `as_of` keeps it,
        # an explicit range drops it.
        "published_ts": _timestamp(published) if published else UNKNOWN_TS,
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _timestamp(moment: datetime) -> float:
    """Seconds since the epoch; dates without a zone are taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


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


class Store:
    """Chroma vectors, FTS5 keyword index and article catalog for one data folder."""

    def __init__(self, config: Settings, *, model_name: str, dimension: int, rebuild: bool = False) -> None:
        self.config = config
        self.model_name = model_name
        self.dimension = dimension
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._locks: list[Any] = []
        self._client = self._connect_chroma()
        # One connection, shared by the app's session threads; the lock keeps their transactions apart.
        self.db = sqlite3.connect(
            config.data_dir / "newsdesk.sqlite", timeout=30, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # The keyword search reads through its own connection, so it and the vector search's catalog
        # lookup (run side by side) do not wait for each other.
        self._search_db = sqlite3.connect(
            config.data_dir / "newsdesk.sqlite", timeout=30, isolation_level=None, check_same_thread=False
        )
        self._search_lock = threading.Lock()
        # passages counted, the count above which a word is common, whether each word is
        self._common: tuple[int, int, dict[str, bool]] = (-1, -1, {})
        if rebuild:
            self._drop_everything()
        had_headlines = self._has_table("headlines_fts")
        self.db.executescript(_SCHEMA)
        if not had_headlines:  # a store from before the headline index: index the headlines it holds
            self.db.execute("INSERT INTO headlines_fts(headlines_fts) VALUES ('rebuild')")
        self._add_missing_columns()
        self._check_model()
        self.collection = self._client.get_or_create_collection(
            config.collection,
            metadata={"embedding_model": model_name, "embedding_dimension": dimension},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        self._check_collection_model()
        self._measure_focus()

    # Opening and closing

    def _connect_chroma(self) -> Any:
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.config.uses_chroma_server:
            return chromadb.HttpClient(
                host=self.config.chroma_host or "127.0.0.1",
                port=self.config.chroma_port or 8000,
                settings=chroma_settings,
            )
        lock = hold_lock(
            self.config.data_dir / ".chroma.lock",
            what=(
                f"Another Newsdesk process is using the embedded store in {self.config.data_dir}. "
                "Stop it, or start a Chroma server (`chroma run --path DIR`) and set CHROMA_HOST and "
                "CHROMA_PORT so several processes can share the store"
            ),
        )
        lock.__enter__()
        self._locks.append(lock)
        return chromadb.PersistentClient(path=str(self.config.data_dir / "chroma"), settings=chroma_settings)

    def close(self) -> None:
        """Release the database and the folder lock."""
        self._search_db.close()
        self.db.close()
        for lock in self._locks:
            lock.__exit__(None, None, None)
        self._locks.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_everything(self) -> None:
        # fetch_state goes too: a rebuilt store must fetch every feed in full, not get "not modified".
        for table in (
            "passages_fts",
            "headlines_fts",
            "passages",
            "articles",
            "pending",
            "meta",
            "fetch_state",
            "ingest_runs",
        ):
            self.db.execute(f"DROP TABLE IF EXISTS {table}")
        try:
            self._client.delete_collection(self.config.collection)
        except Exception as error:  # chromadb raises NotFoundError or ValueError by version
            if "does not exist" not in str(error) and "not found" not in str(error).lower():
                raise

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None

    def _add_missing_columns(self) -> None:
        """Bring a store made before a column was added up to date (added columns start empty)."""
        present = {row[1] for row in self.db.execute("PRAGMA table_info(articles)")}
        if "updated_at" not in present:
            self.db.execute("ALTER TABLE articles ADD COLUMN updated_at TEXT")
        if "focus" not in present:
            self.db.execute("ALTER TABLE articles ADD COLUMN focus REAL")
        for column, kind in (("story_id", "TEXT"), ("copy_of", "TEXT"), ("minhash", "BLOB")):
            if column not in present:
                self.db.execute(f"ALTER TABLE articles ADD COLUMN {column} {kind}")
        self.db.execute("CREATE INDEX IF NOT EXISTS articles_story ON articles(story_id)")

    def _measure_focus(self) -> None:
        """Measure the focus of stored articles that lack it (a store from before it was kept), from the
        passage vectors Chroma holds: one pass over them, the first time such a store is opened."""
        missing = [
            row[0]
            for row in self.db.execute(
                "SELECT article_id FROM articles WHERE focus IS NULL AND chunk_count >= ?",
                (FOCUS_MIN_PASSAGES,),
            )
        ]  # a scan of the catalog's articles only: every store is asked this when it opens
        if not missing:
            return
        owner = dict(
            self.db.execute(
                "SELECT chunk_id, article_id FROM passages "
                "WHERE article_id IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            ).fetchall()
        )
        vectors: dict[str, list[Sequence[float]]] = {}
        for article_id, vector in self._vectors_of(owner):
            vectors.setdefault(article_id, []).append(vector)
        with self._transaction():
            self.db.executemany(
                "UPDATE articles SET focus = ? WHERE article_id = ?",
                [(article_focus(v), article_id) for article_id, v in vectors.items()],
            )

    def _check_model(self) -> None:
        stored = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        chunking = {
            "chunk_tokens": str(self.config.chunk_tokens),
            "chunk_overlap": str(self.config.chunk_overlap),
        }
        if not stored:
            self.db.execute(
                "INSERT INTO meta VALUES ('embedding_model', ?), ('embedding_dimension', ?), "
                "('schema_version', ?), ('vectors', ?)",
                (self.model_name, str(self.dimension), SCHEMA_VERSION, self._vector_home()),
            )
        elif stored.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"The store in {self.config.data_dir} was made by an older Newsdesk. "
                "Rebuild it with `python -m ingest --rebuild PATH ...`."
            )
        self._refuse_other_vectors(stored.get("vectors"))
        self._refuse_mismatch(stored.get("embedding_model"), stored.get("embedding_dimension"))
        # A store from before the passage size was recorded was cut with the settings it is opened with.
        self.db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", chunking.items())
        recorded = dict(self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'chunk_%'").fetchall())
        if recorded != chunking:
            raise ChunkingMismatch(
                f"The passages in {self.config.data_dir} were cut to {recorded['chunk_tokens']} tokens "
                f"with {recorded['chunk_overlap']} shared, but Newsdesk is set to {chunking['chunk_tokens']} "
                f"and {chunking['chunk_overlap']} (NEWSDESK_CHUNK_TOKENS, NEWSDESK_CHUNK_OVERLAP). Mixing "
                "passage sizes in one store would rank them unevenly. Rebuild the store with "
                "`python -m ingest --rebuild PATH ...`, or set them back."
            )

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

    def _check_collection_model(self) -> None:
        metadata = self.collection.metadata or {}
        self._refuse_mismatch(metadata.get("embedding_model"), metadata.get("embedding_dimension"))

    def _refuse_mismatch(self, model: object, dimension: object) -> None:
        if model is None or (model == self.model_name and str(dimension) == str(self.dimension)):
            return
        raise EmbeddingModelMismatch(
            f"The store in {self.config.data_dir} was built with the embedding model {model} "
            f"({dimension} dimensions), but Newsdesk is set to {self.model_name} ({self.dimension}). "
            "Mixing them would give wrong results. Rebuild the store with `python -m ingest --rebuild`, "
            "or set NEWSDESK_EMBEDDING_BACKEND back to the model it was built with."
        )

    # The catalog

    def articles(self) -> dict[str, StoredArticle]:
        """Return every catalog row by article id."""
        rows = self.db.execute(f"SELECT {_ARTICLE_COLUMNS} FROM articles").fetchall()
        return {row[0]: StoredArticle(*row) for row in rows}

    def overview(self) -> CorpusOverview:
        """Summarise the corpus: articles, passages, outlets, publish dates and the last ingest."""
        articles, undated, earliest, latest, last = self.db.execute(
            "SELECT count(*), sum(published_at IS NULL), min(published_at), max(published_at), "
            "max(ingested_at) FROM articles"
        ).fetchone()
        outlets = [
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT outlet FROM articles WHERE outlet IS NOT NULL ORDER BY outlet"
            )
        ]
        passages = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return CorpusOverview(articles, passages, outlets, earliest, latest, undated or 0, last)

    def count_passages(self) -> int:
        """Return how many passages the vector store holds."""
        return self.collection.count()

    # Stories

    def story_members(self) -> list[StoryMember]:
        """Every stored article that has its own text and a story, as story grouping compares them."""
        rows = self.db.execute(
            "SELECT article_id, story_id, copy_of, published_at, minhash FROM articles "
            "WHERE story_id IS NOT NULL AND duplicate_of IS NULL"
        ).fetchall()
        return [StoryMember(a, s, c, _day(p), m) for a, s, c, p, m in rows]

    def without_story(self) -> list[tuple[str, date | None, str | None]]:
        """Articles not yet grouped (a store from before stories, or after `clear_stories`), oldest first:
        (article id, publish date, id of the article whose text it duplicates)."""
        rows = self.db.execute(
            "SELECT article_id, published_at, duplicate_of FROM articles WHERE story_id IS NULL "
            "ORDER BY duplicate_of IS NOT NULL, published_ts IS NULL, published_ts, article_id"
        ).fetchall()
        return [(a, _day(p), d) for a, p, d in rows]

    def passage_texts(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """The stored passages of these articles, in order."""
        texts: dict[str, list[str]] = {}
        rows = self.db.execute(
            "SELECT article_id, text FROM passages WHERE article_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY article_id, chunk_index",
            (json.dumps(list(article_ids)),),
        )
        for article_id, text in rows:
            texts.setdefault(article_id, []).append(text)
        return texts

    def lead_vectors(self, article_ids: Sequence[str]) -> dict[str, Sequence[float]]:
        """The vectors of these articles' first passages (headline and lead), from Chroma."""
        return dict(self._vectors_of({chunk_id(article_id, 0): article_id for article_id in article_ids}))

    def _vectors_of(self, owner: dict[str, str]) -> Iterator[tuple[str, Sequence[float]]]:
        """(article id, vector) of each passage Chroma holds among `owner` (chunk id -> article id)."""
        chunk_ids = list(owner)
        for start in range(0, len(chunk_ids), _UPSERT_BATCH):
            got = self.collection.get(ids=chunk_ids[start : start + _UPSERT_BATCH], include=["embeddings"])
            for cid, vector in zip(got["ids"], got["embeddings"], strict=True):
                yield owner[cid], vector

    def first_passages(self, article_ids: Sequence[str]) -> list[PassageHit]:
        """The first passage (headline and lead) of each of these articles that has passages."""
        return self._catalog_hits({chunk_id(article_id, 0): 0.0 for article_id in article_ids}, None)

    def set_stories(self, links: dict[str, StoryLink]) -> None:
        """Record the stories of articles already stored."""
        with self._transaction():
            self.db.executemany(
                "UPDATE articles SET story_id = ?, copy_of = ?, minhash = ? WHERE article_id = ?",
                [(link.story_id, link.copy_of, link.signature, i) for i, link in links.items()],
            )

    def clear_stories(self) -> None:
        """Forget every article's story, so that they are grouped again."""
        with self._transaction():
            self.db.execute("UPDATE articles SET story_id = NULL, copy_of = NULL, minhash = NULL")

    def story_reports(self, story_ids: Iterable[str]) -> dict[str, list[Report]]:
        """Every article of these stories, oldest first."""
        rows = self.db.execute(
            f"SELECT {_REPORT_COLUMNS} FROM articles "
            "WHERE story_id IN (SELECT value FROM json_each(?)) ORDER BY published_ts, article_id",
            (json.dumps(sorted(set(story_ids))),),
        ).fetchall()
        reports: dict[str, list[Report]] = {}
        for row in rows:
            reports.setdefault(row[1], []).append(Report(*row))
        return reports

    def reports_since(self, *, ingested: str | None = None, published: float | None = None) -> list[Report]:
        """Articles ingested at or after an ISO time, or published at or after a timestamp."""
        clause, value = ("ingested_at >= ?", ingested) if ingested else ("published_ts >= ?", published)
        rows = self.db.execute(
            f"SELECT {_REPORT_COLUMNS} FROM articles WHERE story_id IS NOT NULL AND {clause}", (value,)
        ).fetchall()
        return [Report(*row) for row in rows]

    def record_run(self, started_at: str, *, new: int, changed: int) -> None:
        """Remember an ingest run that stored something, for "what's new since the last ingest"."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO ingest_runs VALUES (?, ?, ?, ?)",
                (started_at, datetime.now(UTC).isoformat(timespec="seconds"), new, changed),
            )

    def last_run(self) -> str | None:
        """When the last ingest run that stored something started (ISO 8601), or None."""
        row = self.db.execute("SELECT max(started_at) FROM ingest_runs").fetchone()
        return row[0] if row else None

    # Writing, journalled

    def recover(self) -> list[str]:
        """Remove what an interrupted run left of the articles it was writing; return their ids."""
        pending = [row[0] for row in self.db.execute("SELECT article_id FROM pending")]
        if pending:
            self.remove(pending)
        return pending

    def write(self, writes: Sequence[ArticleWrite], *, replacing: Iterable[str] = ()) -> None:
        """Store articles with their passages; `replacing` names those whose older version is stored."""
        if not writes:
            return
        ids = [w.article.article_id for w in writes]
        self._mark_pending(ids)
        chunk_ids, vectors, documents, metadatas = [], [], [], []
        for item in writes:
            for chunk, vector in zip(item.chunks, item.vectors, strict=True):
                chunk_ids.append(chunk.chunk_id)
                vectors.append(vector)
                documents.append(chunk.text)
                metadatas.append(chunk_metadata(item.article, chunk))
        for start in range(0, len(chunk_ids), _UPSERT_BATCH):
            end = start + _UPSERT_BATCH
            self.collection.upsert(
                ids=chunk_ids[start:end],
                embeddings=vectors[start:end],
                documents=documents[start:end],
                metadatas=metadatas[start:end],
            )
        counts = {w.article.article_id: len(w.chunks) for w in writes}
        for article_id in set(replacing) & counts.keys():
            # A shorter new version must not leave the old version's tail behind.
            self.collection.delete(
                where={"$and": [{"article_id": article_id}, {"chunk_index": {"$gte": counts[article_id]}}]}
            )
        with self._transaction():
            for item in writes:
                self._delete_rows(item.article.article_id)
                self._insert_article(
                    item.article,
                    len(item.chunks),
                    duplicate_of=None,
                    focus=article_focus(item.vectors),
                    story=item.story,
                )
                self.db.executemany(
                    "INSERT INTO passages (chunk_id, article_id, chunk_index, start, end, title, text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (c.chunk_id, c.article_id, c.index, c.start, c.end, item.article.title, c.text)
                        for c in item.chunks
                    ],
                )
            self.db.executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in ids])

    def record_duplicates(
        self, duplicates: Sequence[tuple[Article, str]], *, stories: dict[str, StoryLink] | None = None
    ) -> None:
        """Record articles whose text is already stored under another id (in the story `stories` gives
        them); nothing is embedded."""
        stories = stories or {}
        if not duplicates:
            return
        ids = [article.article_id for article, _ in duplicates]
        self._mark_pending(ids)
        self._delete_vectors(ids)
        with self._transaction():
            for article, original in duplicates:
                self._delete_rows(article.article_id)
                self._insert_article(article, 0, duplicate_of=original, story=stories.get(article.article_id))
            self.db.executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in ids])

    def remove(self, article_ids: Sequence[str]) -> None:
        """Remove articles: their vectors, keyword rows and catalog rows."""
        if not article_ids:
            return
        self._mark_pending(article_ids)
        self._delete_vectors(article_ids)
        with self._transaction():
            for article_id in article_ids:
                self._delete_rows(article_id)
            self.db.executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in article_ids])

    def _delete_vectors(self, article_ids: Sequence[str]) -> None:
        for start in range(0, len(article_ids), _UPSERT_BATCH):
            batch = list(article_ids[start : start + _UPSERT_BATCH])
            self.collection.delete(where={"article_id": {"$in": batch}})

    def _mark_pending(self, article_ids: Sequence[str]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO pending (article_id) VALUES (?)", [(i,) for i in article_ids]
            )

    def _delete_rows(self, article_id: str) -> None:
        self.db.execute("DELETE FROM passages WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE article_id = ?", (article_id,))

    def _insert_article(
        self,
        article: Article,
        chunk_count: int,
        *,
        duplicate_of: str | None,
        focus: float | None = None,
        story: StoryLink | None = None,
    ) -> None:
        self.db.execute(
            f"INSERT INTO articles ({_ARTICLE_COLUMNS}, published_ts, focus, minhash) "
            f"VALUES ({', '.join('?' * 18)})",
            (
                article.article_id,
                article.source,
                article.content_hash,
                article.text_hash,
                article.title,
                article.outlet,
                article.author,
                article.url,
                article.published_iso,
                chunk_count,
                duplicate_of,
                datetime.now(UTC).isoformat(timespec="microseconds"),
                article.updated_at.isoformat() if article.updated_at else None,
                story.story_id if story else None,
                story.copy_of if story else None,
                _timestamp(article.published_at) if article.published_at else None,
                focus,
                story.signature if story else None,
            ),
        )

    # Conditional requests: what a web server said about a feed, remembered between runs

    def fetch_validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified a server last sent for this URL (None, None when never fetched)."""
        with self._lock:
            row = self.db.execute(
                "SELECT etag, last_modified FROM fetch_state WHERE url = ?", (url,)
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def save_fetch_validators(self, validators: dict[str, tuple[str | None, str | None]]) -> None:
        """Remember validators once what they vouch for is stored (never before: a 304 would lose it)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO fetch_state (url, etag, last_modified, checked_at) "
                "VALUES (?, ?, ?, ?)",
                [(url, etag, modified, now) for url, (etag, modified) in validators.items()],
            )

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

    # Searching

    def vector_search(
        self, vector: Sequence[float], *, k: int, where: PassageFilter | None = None
    ) -> list[PassageHit]:
        """Return the k passages nearest to a query vector, best first (score: cosine similarity).

        Chroma is asked for ids and distances only (fetching its documents and metadata cost ten times the
        search here); the passages come from the catalog, which applies the filter. A filtered Chroma query
        costs as much again, and most filters (as_of above all) drop a minority of passages: so the filter
        is applied to 8, then 64 times the hits wanted, and only when that leaves too few does Chroma filter.
        """
        total = self.collection.count()
        if total == 0:
            return []
        for widen in (1,) if where is None else VECTOR_WIDEN:
            n = min(widen * k, total)
            hits = self._catalog_hits(self._nearest(vector, n=n, where=None), where)
            if len(hits) >= k or n >= total:
                return hits[:k]
        assert where is not None
        return self._catalog_hits(self._nearest(vector, n=k, where=where.for_chroma()), where)[:k]

    def _nearest(self, vector: Sequence[float], *, n: int, where: dict[str, Any] | None) -> dict[str, float]:
        """Chunk ids of the n nearest passages, nearest first, with their cosine similarity."""
        result = self.collection.query(
            query_embeddings=[list(vector)], n_results=n, where=where, include=["distances"]
        )
        distances = (result["distances"] or [[]])[0]
        return {cid: 1.0 - float(d) for cid, d in zip(result["ids"][0], distances, strict=True)}

    def _catalog_hits(self, similarity: dict[str, float], where: PassageFilter | None) -> list[PassageHit]:
        """The catalog's passages for these chunk ids that pass the filter, in the order given."""
        clauses, params = (where or PassageFilter()).for_sql()
        with self._lock:
            rows = self.db.execute(
                f"""SELECT {_HIT_COLUMNS} FROM passages p JOIN articles a ON a.article_id = p.article_id
                    WHERE p.chunk_id IN (SELECT value FROM json_each(?)) {clauses}""",
                (json.dumps(list(similarity)), *params),
            ).fetchall()
        order = {cid: n for n, cid in enumerate(similarity)}
        rows.sort(key=lambda row: order[row[0]])
        return [_hit(row, similarity[row[0]]) for row in rows]

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        k: int,
        where: PassageFilter | None = None,
        config: RetrievalConfig | None = None,
    ) -> list[PassageHit]:
        """Return the k passages that best match any of the terms (BM25 over the FTS5 index), best first
        (`config`: the retrieval settings, the store's own when not given)."""
        phrases = _phrases(terms)
        if not phrases:
            return []
        config = config or self.config.retrieval
        clauses, params = (where or PassageFilter()).for_sql()
        with self._search_lock:
            match = " OR ".join(self._distinctive(phrases, config))
            rows = self._keyword_rows(match, clauses, params, k, title_weight=config.title_weight)
        return [_hit(row[:-1], float(row[-1])) for row in rows]

    def headline_search(
        self, terms: Sequence[str], *, k: int, where: PassageFilter | None = None
    ) -> list[PassageHit]:
        """Return up to k passages of the k/4 articles whose headline best matches the terms (BM25 over one
        row per article), best article first, each article's passages in order (score: the headline's)."""
        phrases = _phrases(terms)
        if not phrases:
            return []
        clauses, params = (where or PassageFilter()).for_sql()
        with self._lock:  # the main connection: the keyword search holds the other one meanwhile
            rows = self.db.execute(
                f"""SELECT {_HIT_COLUMNS}, h.score
                    FROM (SELECT rowid, -bm25(headlines_fts) AS score FROM headlines_fts
                          WHERE headlines_fts MATCH ? ORDER BY score DESC LIMIT ?) AS h
                    JOIN articles a ON a.rowid = h.rowid
                    JOIN passages p ON p.article_id = a.article_id
                    WHERE TRUE {clauses}
                    ORDER BY h.score DESC, p.chunk_index LIMIT ?""",
                (" OR ".join(phrases), max(1, k // 4), *params, k),
            ).fetchall()
        return [_hit(row[:-1], float(row[-1])) for row in rows]

    def _distinctive(self, phrases: list[str], config: RetrievalConfig) -> list[str]:
        """Leave out the words found in more than `common_share` of passages ("new", "state", "years"):
        BM25 gives them little weight, yet ranking every passage they match is most of a search's cost.
        A small store keeps every word, and so does a question whose words are all that common."""
        (total,) = self._search_db.execute("SELECT count(*) FROM passages").fetchone()
        limit = max(int(config.common_share * total), config.common_floor)
        if limit >= total:
            return phrases
        if self._common[:2] != (total, limit):  # the store or the setting changed: count again
            self._common = (total, limit, {})
        known = self._common[2]
        for phrase in phrases:
            if phrase not in known:
                (count,) = self._search_db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? LIMIT ?)",
                    (phrase, limit + 1),
                ).fetchone()
                known[phrase] = count > limit
        return [phrase for phrase in phrases if not known[phrase]] or phrases

    def _keyword_rows(
        self, match: str, clauses: str, params: list[Any], k: int, *, title_weight: float
    ) -> list[tuple[Any, ...]]:
        """Rank inside the FTS index first, then join and filter the best: joining every match before
        ranking costs more than the ranking. When the filter leaves fewer than k, widen the pool."""
        for widen in KEYWORD_POOL:
            rows = self._ranked_rows(match, clauses, params, k, pool=widen * k, title_weight=title_weight)
            if len(rows) >= k:
                return rows
        return self._ranked_rows(match, clauses, params, k, pool=-1, title_weight=title_weight)

    def _ranked_rows(
        self, match: str, clauses: str, params: list[Any], k: int, *, pool: int, title_weight: float
    ) -> list[tuple[Any, ...]]:
        return self._search_db.execute(
            f"""SELECT {_HIT_COLUMNS}, f.score
                FROM (SELECT rowid, -bm25(passages_fts, ?, 1.0) AS score FROM passages_fts
                      WHERE passages_fts MATCH ? ORDER BY score DESC LIMIT ?) AS f
                JOIN passages p ON p.rowid = f.rowid
                JOIN articles a ON a.article_id = p.article_id
                WHERE TRUE {clauses}
                ORDER BY f.score DESC LIMIT ?""",
            (title_weight, match, pool, *params, k),
        ).fetchall()


@dataclass(frozen=True)
class PassageFilter:
    """Which passages a search may return: by outlet and by publish time (seconds since the epoch).

    `since`/`until` are an explicit range, so they drop articles of unknown date; `as_of` only drops
    articles published after it, never those of unknown date.
    """

    outlets: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    as_of: float | None = None

    def for_chroma(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.outlets:
            clauses.append({"outlet": {"$in": list(self.outlets)}})
        if self.since is not None:
            clauses.append({"published_ts": {"$gte": self.since}})
        if self.until is not None:
            clauses += [{"published_ts": {"$lte": self.until}}, {"published_ts": {"$gt": UNKNOWN_TS}}]
        if self.as_of is not None:
            clauses.append({"published_ts": {"$lte": self.as_of}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def for_sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.outlets:
            clauses.append(f"a.outlet IN ({', '.join('?' * len(self.outlets))})")
            params += list(self.outlets)
        if self.since is not None:
            clauses.append("a.published_ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("a.published_ts <= ?")
            params.append(self.until)
        if self.as_of is not None:
            clauses.append("(a.published_ts IS NULL OR a.published_ts <= ?)")
            params.append(self.as_of)
        return "".join(f" AND {c}" for c in clauses), params


_HIT_KEYS = (
    "chunk_index", "start", "end", "article_id", "title", "outlet", "author", "url",
    "published_at", "published_ts", "content_hash", "focus", "story_id", "copy_of",
)  # fmt: skip
_HIT_COLUMNS = "p.chunk_id, p.text, p.chunk_index, p.start, p.end, " + ", ".join(
    f"a.{key}" for key in _HIT_KEYS[3:]
)


def article_focus(vectors: Sequence[Sequence[float]]) -> float | None:
    """How closely an article keeps to one subject: the mean cosine similarity between pairs of its
    passages (unit vectors). A story scores about 0.7 with MiniLM; a digest of the day's news ("5 things
    to know") or a live blog, whose passages are about different stories, 0.2 to 0.4. None for an article
    of fewer than FOCUS_MIN_PASSAGES passages."""
    n = len(vectors)
    if n < FOCUS_MIN_PASSAGES:
        return None
    matrix = np.asarray(vectors, dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
    total = matrix.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def _day(published_at: str | None) -> date | None:
    return datetime.fromisoformat(published_at).date() if published_at else None


def _phrases(terms: Sequence[str]) -> list[str]:
    """The terms as FTS5 phrases (quoted, so no word is read as an operator)."""
    return ['"' + term.replace('"', "") + '"' for term in terms]


def _hit(row: Sequence[Any], score: float) -> PassageHit:
    """A search hit from a catalog row (_HIT_COLUMNS) and its score."""
    metadata = {key: value for key, value in zip(_HIT_KEYS, row[2:], strict=True) if value is not None}
    return PassageHit(row[0], row[1], score, metadata)


_UPSERT_BATCH = 1000  # well under Chroma's max batch size
_REPORT_COLUMNS = "article_id, story_id, title, outlet, published_at, url, ingested_at"
_ARTICLE_COLUMNS = (
    "article_id, source, content_hash, text_hash, title, outlet, author, url, published_at, "
    "chunk_count, duplicate_of, ingested_at, updated_at, story_id, copy_of"
)


def open_store(config: Settings, *, rebuild: bool = False) -> Store:
    """Open the store for the configured embedding model (`rebuild` empties it first)."""
    from rag.embeddings import embedding_identity

    name, dimension = embedding_identity(config)
    return Store(config, model_name=name, dimension=dimension, rebuild=rebuild)
