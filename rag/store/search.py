"""Searching the store: the passages nearest a question's vector (Chroma), the best keyword matches of
passages and of headlines (SQLite FTS5, BM25), each filtered by outlet and publish time."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.config import RetrievalConfig
from rag.documents import Passage, chunk_id
from rag.store.lock import Guarded
from rag.store.records import UNKNOWN_TS

KEYWORD_POOL = (4, 32)  # keyword hits ranked per hit wanted before the filter, tried in turn, then all
VECTOR_WIDEN = (8, 64)  # nearest passages fetched per hit wanted before filtering, tried in turn


class Search(Guarded):
    """Vector, keyword and headline search. The keyword search reads through a connection of its own, so
    it and the vector search's catalog lookup (run side by side) do not wait for each other."""

    _search_db: sqlite3.Connection
    _search_lock: threading.Lock
    # passages counted, the count above which a word is common, whether each word is
    _common: tuple[int, int, dict[str, bool]]

    def vector_search(
        self, vector: Sequence[float], *, k: int, where: PassageFilter | None = None
    ) -> list[Passage]:
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

    def _catalog_hits(self, similarity: dict[str, float], where: PassageFilter | None) -> list[Passage]:
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
    ) -> list[Passage]:
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
    ) -> list[Passage]:
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

    def first_passages(self, article_ids: Sequence[str]) -> list[Passage]:
        """The first passage (headline and lead) of each of these articles that has passages."""
        return self._catalog_hits({chunk_id(article_id, 0): 0.0 for article_id in article_ids}, None)


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


# A passage row as `Passage` takes it: its fields up to `end`, then (after the score) the rest.
_HIT_COLUMNS = (
    "p.chunk_id, a.article_id, p.text, a.title, a.outlet, a.author, a.url, a.published_at, p.start, p.end, "
    "a.focus, a.story_id, a.copy_of, p.chunk_index"
)


def _phrases(terms: Sequence[str]) -> list[str]:
    """The terms as FTS5 phrases (quoted, so no word is read as an operator)."""
    return ['"' + term.replace('"', "") + '"' for term in terms]


def _hit(row: Sequence[Any], score: float) -> Passage:
    """A passage from a catalog row (_HIT_COLUMNS) and the score of the search that found it."""
    cid, article, text, title, outlet, author, url, published, start, end, focus, story, copy_of, index = row
    return Passage(
        cid, article, text, title, outlet, author, url, published, start, end, score,
        focus=focus, story_id=story, copy_of=copy_of, chunk_index=index,
    )  # fmt: skip
