"""The catalog's tables, how a store from an earlier Newsdesk is brought up to date, and what a store
records about how it was built (embedding model, passage size, where its vectors live), refusing to mix."""

from __future__ import annotations

from typing import Any

from rag.store.database import CatalogDatabase
from rag.store.records import ChunkingMismatch, EmbeddingModelMismatch, StoreError
from rag.store.vectors import Vectors

SCHEMA_VERSION = "4"  # bump when the tables change; an older store is refused with how to rebuild

LAYOUT = "shelves"  # row ids by publish day, vectors on shelves by time (rag/store/periods.py)


class Schema(Vectors):
    """Creating, upgrading and checking the catalog of a data folder."""

    model_name: str
    dimension: int
    _client: Any  # the Chroma client
    database: CatalogDatabase

    def _create_tables(self, *, rebuild: bool) -> None:
        """Make the tables (after emptying the folder's catalog and collection, for `rebuild`), bring an
        older store's up to date, and refuse a store built in a way these settings would not build it."""
        if rebuild:
            # Every table of the catalog goes, with what ingest keeps there too, such as the validators of
            # feeds fetched: a rebuilt store must fetch every feed in full.
            self.database.drop_tables()
            self._drop_vectors()
        self.database.create_tables()
        self._check_model()

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
