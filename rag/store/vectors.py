"""The passages' vectors in Chroma: one collection a period (rag/store/periods.py), so that a search loads
and reads only the months it asks for, and a store's memory follows what its questions touch."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rag.documents import chunk_id
from rag.store.catalog import BATCH
from rag.store.lock import Guarded
from rag.store.periods import UNDATED, period_of


class Vectors(Guarded):
    """A Chroma collection for each period that holds passages, made when it is first written to."""

    _client: Any
    model_name: str
    dimension: int
    _collections: dict[str, Any]

    def _collection_name(self, period: str) -> str:
        return f"{self.config.collection}-{period}"

    def _collection(self, period: str, *, create: bool = False) -> Any | None:
        """The collection of a period (None when it has none yet and `create` is false)."""
        found = self._collections.get(period)
        if found is not None:
            return found
        name = self._collection_name(period)
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
                if "does not exist" in str(error) or "not found" in str(error).lower():
                    return None
                raise
        self._collections[period] = found
        return found

    def _period_collections(self) -> dict[str, Any]:
        """Every period collection of this store in the Chroma it uses, by period."""
        pattern = re.compile(rf"{re.escape(self.config.collection)}-(\d{{4}}-\d{{2}}|{UNDATED})")
        found = {}
        for entry in self._client.list_collections():
            name = entry if isinstance(entry, str) else entry.name
            if match := pattern.fullmatch(name):
                found[match[1]] = name
        return found

    def _drop_vectors(self) -> None:
        """Delete every collection of this store (and the single one of a store from before periods)."""
        self._collections.clear()
        for name in [*self._period_collections().values(), self.config.collection]:
            try:
                self._client.delete_collection(name)
            except Exception as error:  # chromadb raises NotFoundError or ValueError by version
                if "does not exist" not in str(error) and "not found" not in str(error).lower():
                    raise

    def _upsert(
        self,
        period: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        collection: Any = self._collection(period, create=True)
        for start in range(0, len(ids), BATCH):
            end = start + BATCH
            collection.upsert(
                ids=list(ids[start:end]),
                embeddings=list(vectors[start:end]),
                documents=list(documents[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def _delete_where(self, periods: Iterable[str], where: dict[str, Any]) -> None:
        for period in sorted(set(periods)):
            collection = self._collection(period)
            if collection is not None:
                collection.delete(where=where)

    def _nearest(
        self, vector: Sequence[float], period: str, *, n: int, where: Any = None
    ) -> dict[str, float]:
        """Chunk ids of the n passages of a period nearest to a vector, nearest first, with their cosine
        similarity."""
        collection = self._collection(period)
        if collection is None or n <= 0:
            return {}
        result = collection.query(
            query_embeddings=[list(vector)], n_results=n, where=where, include=["distances"]
        )
        distances = (result["distances"] or [[]])[0]
        return {cid: 1.0 - float(d) for cid, d in zip(result["ids"][0], distances, strict=True)}

    def _vectors_by_period(
        self, ids_by_period: dict[str, list[str]]
    ) -> Iterator[tuple[str, Sequence[float]]]:
        """(chunk id, vector) of each of these passages that Chroma holds."""
        for period, chunk_ids in ids_by_period.items():
            collection = self._collection(period)
            if collection is None:
                continue
            for start in range(0, len(chunk_ids), BATCH):
                got: Any = collection.get(ids=chunk_ids[start : start + BATCH], include=["embeddings"])
                yield from zip(got["ids"], got["embeddings"], strict=True)

    def lead_vectors(self, article_ids: Sequence[str]) -> dict[str, Sequence[float]]:
        """The vectors of these articles' first passages (headline and lead), from Chroma."""
        return dict(self._vectors_of({chunk_id(article_id, 0): article_id for article_id in article_ids}))

    def _vectors_of(self, owner: dict[str, str]) -> Iterator[tuple[str, Sequence[float]]]:
        """(article id, vector) of each stored passage among `owner` (chunk id -> article id)."""
        for cid, vector in self.passage_vectors(list(owner)).items():
            yield owner[cid], vector

    def passage_vectors(self, chunk_ids: Sequence[str]) -> dict[str, Sequence[float]]:
        """The vectors of these stored passages, by chunk id."""
        rows = self._rows(
            "SELECT p.chunk_id, a.published_ts FROM passages p "
            "JOIN articles a ON a.article_id = p.article_id "
            "WHERE p.chunk_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(chunk_ids)),),
        )
        by_period: dict[str, list[str]] = {}
        for cid, published_ts in rows:
            by_period.setdefault(period_of(published_ts), []).append(cid)
        return dict(self._vectors_by_period(by_period))

    def collections(self, periods: Iterable[str]) -> dict[str, Any]:
        """The Chroma collections of these periods that exist, by period (for baselines that search them
        with another library)."""
        found = {period: self._collection(period) for period in periods}
        return {period: collection for period, collection in found.items() if collection is not None}

    def vector_ids(self) -> list[str]:
        """Every passage id Chroma holds for this store (for checks; reads every collection)."""
        ids: list[str] = []
        for period in self._period_collections():
            collection = self._collection(period)
            if collection is not None:
                ids += collection.get(include=[])["ids"]
        return ids

    def _move_single_collection(self, periods_of: dict[str, str]) -> None:
        """Move the vectors of a store from before periods out of its single collection into the collection
        of each passage's period (`periods_of`: chunk id -> period), then delete it. Killed half way, it is
        done again: writing a vector twice replaces it."""
        try:
            single = self._client.get_collection(self.config.collection, embedding_function=None)
        except Exception as error:  # chromadb raises NotFoundError or ValueError by version
            if "does not exist" in str(error) or "not found" in str(error).lower():
                return
            raise
        ids = list(periods_of)
        for start in range(0, len(ids), BATCH):
            got = _patiently(
                lambda part=ids[start : start + BATCH]: single.get(  # type: ignore[misc]
                    ids=part, include=["embeddings", "documents", "metadatas"]
                )
            )
            by_period: dict[str, list[int]] = {}
            for n, cid in enumerate(got["ids"]):
                by_period.setdefault(periods_of[cid], []).append(n)
            for period, rows in by_period.items():
                self._upsert(
                    period,
                    [got["ids"][n] for n in rows],
                    [got["embeddings"][n] for n in rows],
                    [got["documents"][n] for n in rows],
                    [got["metadatas"][n] for n in rows],
                )
        self._client.delete_collection(self.config.collection)


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
