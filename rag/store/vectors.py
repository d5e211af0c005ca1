"""The passages' vectors in Chroma, on shelves by publish time (rag/store/periods.py): a decade's articles
share one collection until it holds `shelf_size` vectors (a setting), then it is split into a collection a
year, and a full year into a collection a month. A search reads only the shelves of the months it asks
for, so a small store is searched in a few calls and a large one holds in memory what its questions touch."""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from typing import Any

from rag.documents import chunk_id
from rag.store.catalog import BATCH
from rag.store.lock import Guarded
from rag.store.periods import UNDATED, period_of, shelf_of
from rag.store.records import CHROMA_KEYS, UNKNOWN_TS

_SHELF = r"\d{3}0s|\d{4}|\d{4}-\d{2}|" + UNDATED  # a decade, a year, a month, or the undated
_SEGMENT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # an index folder


class Vectors(Guarded):
    """The Chroma collections of a store's shelves, made when first written to, split as they fill."""

    _client: Any
    model_name: str
    dimension: int
    _collections: dict[str, Any]

    def _split(self) -> set[str]:
        """The shelves (decades, years) that have been split into finer ones."""
        return {row[0] for row in self._rows("SELECT shelf FROM vector_splits")}

    def _shelves(self, periods: Iterable[str]) -> dict[str, list[str]]:
        """The shelves that hold these periods' vectors, each with the periods it holds of them."""
        split = self._split()
        found: dict[str, list[str]] = {}
        for period in periods:
            found.setdefault(shelf_of(period, split), []).append(period)
        return found

    def _collection(self, shelf: str, *, create: bool = False) -> Any | None:
        """The collection of a shelf (None when it has none yet and `create` is false)."""
        found = self._collections.get(shelf)
        if found is not None:
            return found
        name = f"{self.config.collection}-{shelf}"
        if create:
            found = self._client.get_or_create_collection(
                name,
                metadata={"embedding_model": self.model_name, "embedding_dimension": self.dimension},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        else:
            try:
                found = self._client.get_collection(name, embedding_function=None)
            except Exception as error:  # chromadb raises NotFoundError or ValueError by version
                if _missing(error):
                    return None
                raise
        self._collections[shelf] = found
        return found

    def _shelf_collections(self) -> dict[str, str]:
        """Every shelf collection of this store in the Chroma it uses: shelf -> collection name."""
        pattern = re.compile(rf"{re.escape(self.config.collection)}-({_SHELF})")
        found = {}
        for entry in self._client.list_collections():
            name = entry if isinstance(entry, str) else entry.name
            if match := pattern.fullmatch(name):
                found[match[1]] = name
        return found

    def _drop_vectors(self) -> None:
        """Delete every collection of this store (and the single one of a store from before shelves)."""
        self._collections.clear()
        for name in [*self._shelf_collections().values(), self.config.collection]:
            self._delete_collection(name)

    def _delete_collection(self, name: str) -> None:
        try:
            self._client.delete_collection(name)
        except Exception as error:  # chromadb raises NotFoundError or ValueError by version
            if not _missing(error):
                raise
        self._sweep_index_folders()

    def _sweep_index_folders(self) -> None:
        """Remove the index folders of deleted collections from an embedded store's Chroma folder.

        Embedded Chroma forgets a deleted collection but leaves its HNSW folder on disk (chroma-core/chroma
        #5259), so every shelf split would leave a copy of the shelf's index behind. A folder named for a
        segment that Chroma's own database no longer lists is removed. A Chroma server keeps its own folder.
        """
        if self.config.uses_chroma_server:
            return
        folder = self.config.data_dir / "chroma"
        try:
            with closing(sqlite3.connect(f"file:{folder / 'chroma.sqlite3'}?mode=ro", uri=True)) as chroma:
                live = {str(row[0]) for row in chroma.execute("SELECT id FROM segments")}
        except sqlite3.Error:  # a Chroma that keeps its segments otherwise: left as it is
            return
        for entry in folder.iterdir():
            if entry.is_dir() and _SEGMENT.fullmatch(entry.name) and entry.name not in live:
                shutil.rmtree(entry, ignore_errors=True)

    def _upsert(
        self,
        period: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        (shelf,) = self._shelves([period])
        _upsert(self._collection(shelf, create=True), ids, vectors, metadatas)

    def _delete_where(self, periods: Iterable[str], where: dict[str, Any]) -> None:
        for shelf in sorted(self._shelves(set(periods))):
            collection = self._collection(shelf)
            if collection is not None:
                collection.delete(where=where)

    def _nearest(self, vector: Sequence[float], shelf: str, *, n: int, where: Any = None) -> dict[str, float]:
        """Chunk ids of the n passages of a shelf nearest to a vector, nearest first, with their cosine
        similarity."""
        collection = self._collection(shelf)
        if collection is None or n <= 0:
            return {}
        result = collection.query(
            query_embeddings=[list(vector)], n_results=n, where=where, include=["distances"]
        )
        distances = (result["distances"] or [[]])[0]
        return {cid: 1.0 - float(d) for cid, d in zip(result["ids"][0], distances, strict=True)}

    def split_full(self, shelves: Iterable[str] | None = None) -> list[str]:
        """Split each decade or year shelf (of `shelves`, or all) that holds more than `shelf_size` vectors
        into finer ones (its vectors copied, the split recorded, then the old collection deleted: killed half
        way, the old one still serves and the split is done again); return the shelves split."""
        done = []
        for shelf in sorted(self._shelf_collections() if shelves is None else set(shelves)):
            if shelf in self._split() or len(shelf) == 7 or shelf == UNDATED:  # months are not split
                continue
            collection = self._collection(shelf)
            if collection is not None and collection.count() > self.config.shelf_size:
                self._relayout(collection, split={*self._split(), shelf})
                with self._transaction():
                    self._execute("INSERT INTO vector_splits VALUES (?) ON CONFLICT DO NOTHING", (shelf,))
                self._forget(shelf)
                done.append(shelf)
        for shelf in self._split() & set(self._shelf_collections()):  # an old shelf a killed split left
            self._forget(shelf)
        return done + (self.split_full() if done else [])  # a year of a split decade may be full too

    def _forget(self, shelf: str) -> None:
        self._collections.pop(shelf, None)
        self._delete_collection(f"{self.config.collection}-{shelf}")

    def _relayout(self, source: Any, *, split: set[str]) -> None:
        """Copy every vector of a collection to the shelf of its period under `split` (writing a vector
        twice replaces it, so this may be done again), with the metadata Chroma keeps now (a store from
        before kept each passage's text and headline there too: they are left behind)."""
        for start in range(0, source.count(), BATCH):
            got = _patiently(
                lambda at=start: source.get(  # type: ignore[misc]
                    limit=BATCH, offset=at, include=["embeddings", "metadatas"]
                )
            )
            by_shelf: dict[str, list[int]] = {}
            for n, metadata in enumerate(got["metadatas"]):
                shelf = shelf_of(period_of(_published_ts(metadata)), split)
                by_shelf.setdefault(shelf, []).append(n)
            for shelf, rows in by_shelf.items():
                if f"{self.config.collection}-{shelf}" == source.name:
                    continue
                _upsert(
                    self._collection(shelf, create=True),
                    [got["ids"][n] for n in rows],
                    [got["embeddings"][n] for n in rows],
                    [
                        {key: got["metadatas"][n][key] for key in CHROMA_KEYS if key in got["metadatas"][n]}
                        for n in rows
                    ],  # fmt: skip
                )

    def _move_to_shelves(self) -> None:
        """Move the vectors of a store from before shelves (one collection, or one a month) to their
        shelves, then split the full ones. Killed half way, it is done again."""
        split = self._split()
        single = f"{self.config.collection}"
        names = {shelf: name for shelf, name in self._shelf_collections().items() if len(shelf) == 7}
        names = {shelf: name for shelf, name in names.items() if shelf_of(shelf, split) != shelf}
        for name in [single, *names.values()]:
            try:
                source = self._client.get_collection(name, embedding_function=None)
            except Exception as error:  # chromadb raises NotFoundError or ValueError by version
                if _missing(error):
                    continue
                raise
            self._relayout(source, split=split)
            self._delete_collection(name)
        self._collections.clear()
        self.split_full()

    def article_vectors(self, article_ids: Sequence[str]) -> dict[str, list[Sequence[float]]]:
        """The vectors of all these articles' passages, in order, from Chroma."""
        test, values = self._in(article_ids)
        counts = self._rows(
            f"SELECT article_id, chunk_count FROM articles WHERE article_id {test}", (values,)
        )
        owner = {chunk_id(a, n): (a, n) for a, count in counts for n in range(count)}
        found: dict[str, list[tuple[int, Sequence[float]]]] = {}
        for cid, vector in self.passage_vectors(list(owner)).items():
            article_id, n = owner[cid]
            found.setdefault(article_id, []).append((n, vector))
        return {a: [v for _, v in sorted(pairs, key=lambda pair: pair[0])] for a, pairs in found.items()}

    def _vectors_of(self, owner: dict[str, str]) -> Iterator[tuple[str, Sequence[float]]]:
        """(article id, vector) of each stored passage among `owner` (chunk id -> article id)."""
        for cid, vector in self.passage_vectors(list(owner)).items():
            yield owner[cid], vector

    def passage_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Sequence[float]]:
        """The vectors of these stored passages, by chunk id."""
        test, values = self._in(chunk_ids)
        rows = self._rows(
            "SELECT p.chunk_id, a.published_ts FROM passages p "
            f"JOIN articles a ON a.article_id = p.article_id WHERE p.chunk_id {test}",
            (values,),
        )
        by_period: dict[str, list[str]] = {}
        for cid, published_ts in rows:
            by_period.setdefault(period_of(published_ts), []).append(cid)
        found: dict[str, Sequence[float]] = {}
        for shelf, periods in self._shelves(by_period).items():
            collection = self._collection(shelf)
            wanted = [cid for period in periods for cid in by_period[period]]
            for start in range(0, len(wanted) if collection is not None else 0, BATCH):
                got: Any = collection.get(  # type: ignore[union-attr]
                    ids=wanted[start : start + BATCH], include=["embeddings"]
                )
                found.update(zip(got["ids"], got["embeddings"], strict=True))
        return found

    def collections(self, periods: Iterable[str]) -> dict[str, Any]:
        """The Chroma collections that hold these periods' vectors, by shelf (for baselines that search
        them with another library)."""
        found = {shelf: self._collection(shelf) for shelf in self._shelves(periods)}
        return {shelf: collection for shelf, collection in found.items() if collection is not None}

    def vector_ids(self) -> list[str]:
        """Every passage id Chroma holds for this store (for checks; reads every collection)."""
        ids: list[str] = []
        for shelf in self._shelf_collections():
            collection = self._collection(shelf)
            if collection is not None:
                ids += collection.get(include=[])["ids"]
        return ids


def _upsert(
    collection: Any,
    ids: Sequence[str],
    vectors: Sequence[Sequence[float]],
    metadatas: Sequence[dict[str, Any]],
) -> None:
    for start in range(0, len(ids), BATCH):
        end = start + BATCH
        collection.upsert(
            ids=list(ids[start:end]),
            embeddings=list(vectors[start:end]),
            metadatas=list(metadatas[start:end]),
        )


def _published_ts(metadata: dict[str, Any] | None) -> float | None:
    """A passage's publish time from its Chroma metadata (an undated one carries a far-past stand-in)."""
    value = (metadata or {}).get("published_ts")
    return None if value is None or value <= UNKNOWN_TS else float(value)


def _missing(error: Exception) -> bool:
    return "does not exist" in str(error) or "not found" in str(error).lower()


def _patiently(read: Callable[[], Any], *, tries: int = 4) -> Any:
    """Read from Chroma, trying again after a pause when it fails inside: seen once here ("Error finding
    id") when a store's single collection was read just after the process that wrote it had ended."""
    for attempt in range(tries):
        try:
            return read()
        except Exception:  # chromadb raises InternalError
            if attempt == tries - 1:
                raise
            time.sleep(2**attempt)
    return None
