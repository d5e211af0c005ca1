"""The store: Chroma vectors, the keyword and headline indexes and the article catalog, kept in step.

This package is the only code that imports chromadb. Its parts: `schema` (what a store records about how it
was built, refusing to mix), `catalog` (reads), `writes` (journalled writes), `search` (vector, keyword and
headline search), `vectors` (the Chroma shelves), `lock` (between processes and between threads),
`records` (what goes in and comes out), `periods` (the layout by time), and the catalog's database:
`database` (the interface), `sqlite` (the default, a file in the data folder, with FTS5) and `postgres`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaSettings

from rag.config import Settings
from rag.store.database import CatalogDatabase
from rag.store.lock import hold_lock
from rag.store.periods import UNDATED, span
from rag.store.records import (
    UNKNOWN_TS,
    ArticleWrite,
    ChunkingMismatch,
    CorpusOverview,
    EmbeddingModelMismatch,
    Report,
    StoredArticle,
    StoreError,
    StoreLockedError,
    StoryMember,
    Updates,
    chunk_metadata,
)
from rag.store.schema import LAYOUT, SCHEMA_VERSION, Schema
from rag.store.search import PassageFilter, Search
from rag.store.sqlite import SQLiteDatabase
from rag.store.writes import Writes, article_focus

__all__ = [
    "SCHEMA_VERSION", "UNDATED", "UNKNOWN_TS", "ArticleWrite", "ChunkingMismatch", "CorpusOverview",
    "EmbeddingModelMismatch", "PassageFilter", "Report", "Store", "StoreError",
    "StoreLockedError", "StoredArticle", "StoryMember", "Updates", "article_focus", "chunk_metadata",
    "hold_lock", "open_store", "span",
]  # fmt: skip


class Store(Schema, Writes, Search):
    """Chroma vectors, FTS5 keyword index and article catalog for one data folder."""

    def __init__(self, config: Settings, *, model_name: str, dimension: int, rebuild: bool = False) -> None:
        self.config = config
        self.model_name = model_name
        self.dimension = dimension
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._locks: list[Any] = []
        # A rebuild empties the store only once it holds the lock every writer takes, and keeps it while
        # the store is open, so it can neither empty a store another ingest is writing nor be overtaken.
        self._holds_writer = rebuild
        self._databases: list[CatalogDatabase] = []
        self._turn_lock = threading.RLock()  # the app's threads take turns within the process
        self._turns = 0
        self._writes_seen = None
        self.others_wrote = False
        try:
            self._open(rebuild=rebuild)
        except BaseException:  # a store that is refused holds nothing
            self.close()
            raise

    def _open(self, *, rebuild: bool) -> None:
        # One connection, shared by the app's session threads; its lock keeps their reads and writes apart.
        self.database = self._connect()
        if rebuild:
            self._hold(self._writer_lock())
        self._client = self._connect_chroma()
        self.db = self.database.connection  # for checks that read the SQLite file as it is
        self._search_database = self._connect()
        self._search_lock = threading.Lock()
        self._common = {}
        self._collections = {}
        self._create_tables(rebuild=rebuild)
        if self._row("SELECT value FROM meta WHERE key = 'layout' AND value = ?", (LAYOUT,)) is None:
            self._upgrade_layout()
        self._measure_focus()

    def _upgrade_layout(self) -> None:
        """Lay out a store made before the layout by time (rag/store/periods.py), once: its rows renumbered
        by publish day and its vectors moved to their shelves; nothing is embedded again. Killed half way,
        the next open does it again."""
        with self.writing(exclusive=True), self.turn():
            self.database.renumber_rows()
            self._move_to_shelves()
            with self._transaction():
                self._execute(
                    "INSERT INTO meta VALUES ('layout', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (LAYOUT,),
                )

    def _connect(self) -> CatalogDatabase:
        """A connection to the catalog: PostgreSQL when `database_url` names one, else the data folder's
        SQLite file."""
        database: CatalogDatabase
        if self.config.database_url:
            from rag.store.postgres import PostgresDatabase

            database = PostgresDatabase(self.config.database_url)
        else:
            database = SQLiteDatabase(self.config.data_dir / "newsdesk.sqlite")
        self._databases.append(database)
        return database

    def _connect_chroma(self) -> Any:
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.config.uses_chroma_server:
            return chromadb.HttpClient(
                host=self.config.chroma_host or "127.0.0.1",
                port=self.config.chroma_port or 8000,
                settings=chroma_settings,
            )
        self._hold(
            hold_lock(
                self.config.data_dir / ".chroma.lock",
                what=(
                    f"Another Newsdesk process is using the embedded store in {self.config.data_dir}. "
                    "Stop it, or start a Chroma server (`chroma run --path DIR`) and set CHROMA_HOST and "
                    "CHROMA_PORT so several processes can share the store"
                ),
            )
        )
        return chromadb.PersistentClient(path=str(self.config.data_dir / "chroma"), settings=chroma_settings)

    def _hold(self, lock: Any) -> None:
        """Take a lock for as long as the store is open (released by `close`)."""
        lock.__enter__()
        self._locks.append(lock)

    def _writer_lock(self, *, exclusive: bool = True) -> Any:
        where = "the PostgreSQL catalog" if self.config.database_url else self.config.data_dir
        return self.database.writer_lock(
            what=(
                f"Another ingest process is writing to the store in {where}; nothing was changed. Wait for "
                "it to finish, or stop it, and run this again"
            ),
            exclusive=exclusive,
        )

    @contextmanager
    def writing(self, *, exclusive: bool = False) -> Iterator[None]:
        """Hold the lock that every writer of the store takes for the duration: shared by ingest runs,
        which may run at once and take turns to write (`turn`), and `exclusive` for prune, regroup and
        rebuild, which run alone; refusing at once if another process holds it so. A store opened to
        rebuild holds it, exclusive, already."""
        if self._holds_writer:
            yield
            return
        with self._writer_lock(exclusive=exclusive):
            yield

    def close(self) -> None:
        """Release the database, the vectors held in memory and the folder locks."""
        for database in self._databases:
            database.close()
        self._databases.clear()
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()  # Chroma lets the indexes it loaded go once no client of the folder is open
        for lock in reversed(self._locks):
            lock.__exit__(None, None, None)
        self._locks.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(config: Settings, *, rebuild: bool = False) -> Store:
    """Open the store for the configured embedding model (`rebuild` empties it first)."""
    from rag.embeddings import embedding_identity

    name, dimension = embedding_identity(config)
    return Store(config, model_name=name, dimension=dimension, rebuild=rebuild)
