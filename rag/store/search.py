"""Searching the store: the passages nearest a question's vector (Chroma), the best keyword matches of
passages and of headlines (SQLite FTS5, BM25), each filtered by outlet and publish time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rag.config import RetrievalConfig
from rag.documents import Passage, chunk_id
from rag.store.database import CatalogDatabase
from rag.store.periods import DAY_BITS, UNDATED, day_number, rowid_ranges, span
from rag.store.records import UNKNOWN_TS
from rag.store.vectors import Vectors

KEYWORD_POOL = (4, 32)  # keyword hits ranked per hit wanted before the filter, tried in turn, then all
VECTOR_WIDEN = (8, 64)  # nearest passages fetched per hit wanted before filtering, tried in turn
SHELF_SEARCHES = max(2, min(4, os.cpu_count() or 1))  # shelves searched at once


class Search(Vectors):
    """Vector, keyword and headline search, each over the periods asked for (rag/store/periods.py) or the
    whole store. The keyword search reads through a connection of its own, so it and the vector search's
    catalog lookup (run side by side) do not wait for each other."""

    _search_database: CatalogDatabase
    _search_lock: threading.Lock
    _common: dict[tuple[str, tuple[tuple[int, int], ...], int], bool]  # (phrase, rows, limit) -> common

    def periods(self) -> dict[str, int]:
        """The periods that hold passages, with how many each holds (kept by the writes, not counted)."""
        return dict(self._rows("SELECT period, passages FROM periods WHERE passages > 0"))

    def vector_search(
        self,
        vector: Sequence[float],
        *,
        k: int,
        where: PassageFilter | None = None,
        periods: Sequence[str] | None = None,
    ) -> list[Passage]:
        """Return the k passages nearest to a query vector among those of `periods` (every period when
        None), best first (score: cosine similarity).

        Chroma is asked for ids and distances only (fetching its documents and metadata cost ten times the
        search here); the passages come from the catalog, which applies the filter. A filtered Chroma query
        costs as much again, and most filters (as_of above all) drop a minority of passages: so the filter
        is applied to 8, then 64 times the hits wanted, and only when that leaves too few does Chroma filter.
        """
        held = self.periods()
        wanted = set(held if periods is None else periods)
        hits: list[Passage] = []
        whole: list[tuple[str, int]] = []  # the shelves searched whole, and how many each holds
        for shelf, on_shelf in self._shelves(held).items():
            inside = [period for period in on_shelf if period in wanted]
            if not inside:
                continue
            # A shelf that also holds periods not asked for is searched with them filtered out; one whose
            # passages the filter all keeps (an older shelf, as of today) is searched without it.
            within = None if len(inside) == len(on_shelf) else inside
            total = sum(held[period] for period in on_shelf)
            kept = None if where is None or (within is None and where.keeps_all(on_shelf)) else where
            if kept is None and within is None:
                whole.append((shelf, total))
            else:
                hits += self._shelf_hits(vector, shelf, k=k, where=kept, within=within, total=total)
        if whole:  # searched side by side (Chroma's search releases the interpreter), looked up together
            with ThreadPoolExecutor(max_workers=min(len(whole), SHELF_SEARCHES)) as pool:
                found = pool.map(lambda shelf: self._nearest(vector, shelf[0], n=min(k, shelf[1])), whole)
                pairs = [item for shelf in found for item in shelf.items()]
            nearest = sorted(pairs, key=lambda item: item[1], reverse=True)
            hits += self._catalog_hits(dict(nearest[:k]), None)
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:k]

    def _shelf_hits(
        self,
        vector: Sequence[float],
        shelf: str,
        *,
        k: int,
        where: PassageFilter | None,
        within: list[str] | None,
        total: int,
    ) -> list[Passage]:
        """The k passages of a shelf nearest a vector that pass a filter or lie in some of its periods."""
        rows = rowid_ranges(within) if within else None
        for widen in VECTOR_WIDEN:
            n = min(widen * k, total)
            hits = self._catalog_hits(self._nearest(vector, shelf, n=n), where, rows=rows, k=k)
            if len(hits) >= k or n >= total:
                return hits  # (or Chroma has no more to give: what HNSW found is all)
        chroma = [(where or PassageFilter()).for_chroma(), _months_for_chroma(within or [])]
        both = [clause for clause in chroma if clause]
        condition = both[0] if len(both) == 1 else {"$and": both}
        return self._catalog_hits(self._nearest(vector, shelf, n=k, where=condition), where, rows=rows, k=k)

    def _catalog_hits(
        self,
        similarity: dict[str, float],
        where: PassageFilter | None,
        *,
        rows: list[tuple[int, int]] | None = None,
        k: int | None = None,
    ) -> list[Passage]:
        """The catalog's passages for these chunk ids that pass the filter (and lie in these row ranges),
        in the order given; the first k of them when k is given (only those are read out: a vector search
        looks up eight times the passages it keeps)."""
        clauses, params = (where or PassageFilter()).for_sql()
        if rows:
            clauses += " AND (" + " OR ".join("p.rowid BETWEEN ? AND ?" for _ in rows) + ")"
            params += [bound for pair in rows for bound in pair]
        listed, ids = self.database.listed(list(similarity))
        found = self._rows(
            f"""SELECT {_HIT_COLUMNS} FROM {listed} JOIN passages p ON p.chunk_id = listed.value
                JOIN articles a ON a.article_id = p.article_id WHERE TRUE {clauses}
                ORDER BY listed.position LIMIT ?""",
            (ids, *params, len(similarity) if k is None else k),
        )
        return [_hit(row, similarity[row[0]]) for row in found]

    def keyword_search(
        self,
        terms: Sequence[str],
        *,
        k: int,
        where: PassageFilter | None = None,
        config: RetrievalConfig | None = None,
        periods: Sequence[str] | None = None,
    ) -> list[Passage]:
        """Return the k passages of `periods` (every period when None) that best match any of the terms
        (BM25 over the keyword index), best first (`config`: the retrieval settings, the store's own when not
        given). A period is a range of the index's rows, so a search reads only the periods it asks for."""
        config = config or self.config.retrieval
        clauses, params = (where or PassageFilter()).for_sql()
        rows: list[tuple[Any, ...]] = []
        with self._search_lock:
            match, ranges = self._words_and_rows(terms, where, config, periods)
            for rows_in in ranges:
                rows += self._keyword_rows(
                    match, rows_in, (clauses, params), k, title_weight=config.title_weight
                )
        rows.sort(key=lambda row: row[-1], reverse=True)
        return [_hit(row[:-1], float(row[-1])) for row in rows[:k]]

    def keyword_scores(
        self,
        terms: Sequence[str],
        passages: Sequence[Passage],
        *,
        where: PassageFilter | None = None,
        config: RetrievalConfig | None = None,
        periods: Sequence[str] | None = None,
    ) -> list[Passage]:
        """The passages (found by another search of `periods`) that match any of the terms, with the score
        `keyword_search` of those periods gives them, best first: what that search would say of them, at
        the cost of scoring these alone."""
        if not passages:
            return []
        config = config or self.config.retrieval
        with self._search_lock:
            match, _ = self._words_and_rows(terms, where, config, periods)
            scores = self._search_database.keyword_scores(
                match, [p.chunk_id for p in passages], title_weight=config.title_weight
            ) if match else {}  # fmt: skip
        found = [replace(p, score=scores[p.chunk_id]) for p in passages if p.chunk_id in scores]
        return sorted(found, key=lambda hit: hit.score, reverse=True)

    def _words_and_rows(
        self,
        terms: Sequence[str],
        where: PassageFilter | None,
        config: RetrievalConfig,
        periods: Sequence[str] | None,
    ) -> tuple[list[str], list[tuple[int, int]]]:
        """The words a keyword search of `periods` (every period when None) matches, the commonest left out
        (`_distinctive`), and the ranges of the index's rows it reads; none when no word can be matched.
        Called holding the search lock."""
        phrases = self._search_database.match_terms(terms)
        if not phrases:
            return [], []
        held = self.periods()
        chosen = list(held) if periods is None else [p for p in periods if held.get(p)]
        ranges = _rows_of(chosen, list(held), where)
        return self._distinctive(phrases, ranges, sum(held[p] for p in chosen), config), ranges

    def headline_search(
        self,
        terms: Sequence[str],
        *,
        k: int,
        where: PassageFilter | None = None,
        periods: Sequence[str] | None = None,
    ) -> list[Passage]:
        """Return up to k passages of the k/4 articles of `periods` (every period when None) whose headline
        best matches the terms (BM25 over one row per article), best article first, each article's passages
        in order (score: the headline's)."""
        phrases = self.database.match_terms(terms)
        if not phrases:
            return []
        filtered = (where or PassageFilter()).for_sql()
        held = self.periods()
        chosen = list(held) if periods is None else [p for p in periods if held.get(p)]
        rows: list[tuple[Any, ...]] = []
        with self._lock:  # the main connection: the keyword search holds the other one meanwhile
            for rows_in in _rows_of(chosen, list(held), where):
                rows += self.database.headline_rows(
                    _HIT_COLUMNS, phrases, rows_in, filtered, articles=max(1, k // 4), k=k
                )
        rows.sort(key=lambda row: row[-1], reverse=True)  # stable: an article's passages stay in order
        best = list(dict.fromkeys(row[1] for row in rows))[: max(1, k // 4)]
        return [_hit(row[:-1], float(row[-1])) for row in rows if row[1] in best][:k]

    def _distinctive(
        self, phrases: list[str], ranges: list[tuple[int, int]], total: int, config: RetrievalConfig
    ) -> list[str]:
        """Leave out the words found in more than `common_share` of the passages searched ("new", "state",
        "years"): BM25 gives them little weight, yet ranking every passage they match is most of a search's
        cost. A small search keeps every word, and so does a question whose words are all that common. The
        counting stops at the limit, so it costs at most what the periods searched hold."""
        limit = max(int(config.common_share * total), config.common_floor)
        if limit >= total:
            return phrases
        if len(self._common) > 50_000:
            self._common.clear()
        key = tuple(ranges)
        uncounted = [phrase for phrase in phrases if (phrase, key, limit) not in self._common]
        if uncounted:
            common = self._search_database.common_terms(uncounted, ranges, limit)
            self._common.update({(phrase, key, limit): phrase in common for phrase in uncounted})
        return [phrase for phrase in phrases if not self._common[(phrase, key, limit)]] or phrases

    def _keyword_rows(
        self,
        terms: list[str],
        rows_in: tuple[int, int],
        where: tuple[str, list[Any]],
        k: int,
        *,
        title_weight: float,
    ) -> list[tuple[Any, ...]]:
        """Rank inside the FTS index first, then join and filter the best: joining every match before
        ranking costs more than the ranking. When the filter leaves fewer than k, widen the pool."""
        rows: list[tuple[Any, ...]] = []
        for pool in (*(widen * k for widen in KEYWORD_POOL), -1):  # -1: every match
            rows = self._search_database.keyword_rows(
                _HIT_COLUMNS, terms, rows_in, where, pool=pool, k=k, title_weight=title_weight
            )
            if len(rows) >= k:
                break
        return rows

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

    def keeps_all(self, periods: Iterable[str]) -> bool:
        """Whether the filter keeps every passage of these periods (an archive's months, all before the
        question's as-of date): a search of them need not apply it, nor fetch more to make up for it."""
        if self.outlets:
            return False
        spans = [span(period) for period in periods]
        if None in spans:
            return self.since is None and self.until is None  # as_of keeps the undated
        days = [day for pair in spans if pair for day in pair]
        if not days:
            return True
        first = datetime.combine(min(days), time.min, UTC).timestamp()
        after = datetime.combine(max(days) + timedelta(days=1), time.min, UTC).timestamp()
        return all(
            (
                self.since is None or self.since <= first,
                self.until is None or self.until >= after,
                self.as_of is None or self.as_of >= after,
            )
        )

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
    "p.chunk_id, a.article_id, p.text, a.title, a.outlet, a.author, a.url, a.published_at, p.start, "
    'p."end", a.focus, a.story_id, a.copy_of, p.chunk_index'  # "end" is a keyword in PostgreSQL
)


def _rows_of(
    periods: Sequence[str], held: Sequence[str], where: PassageFilter | None
) -> list[tuple[int, int]]:
    """The row id ranges that hold the periods searched, cut at the as-of day: a run of periods with no
    other period of the store between them is one range."""
    order = sorted(held, key=lambda p: (p != UNDATED, p))  # as row ids run: the undated first
    chosen = set(periods)
    runs: list[list[str]] = []
    for period in order:
        if period not in chosen:
            runs.append([])
        elif runs and runs[-1]:
            runs[-1].append(period)
        else:
            runs.append([period])
    until = where.as_of if where else None
    cut = None if until is None else ((day_number(until) + 1) << DAY_BITS) - 1
    ranges = []
    for run in runs:
        if run:
            low, high = rowid_ranges([run[0]])[0][0], rowid_ranges([run[-1]])[0][1]
            high = high if cut is None else min(high, cut)
            if low <= high:
                ranges.append((low, high))
    return ranges


def _months_for_chroma(months: Sequence[str]) -> dict[str, Any] | None:
    """A Chroma filter for passages published in these months (UTC)."""
    spans = [span(month) for month in sorted(months)]
    ranges = [
        {"$and": [{"published_ts": {"$gte": _start(first)}}, {"published_ts": {"$lt": _start(last) + 86400}}]}
        for first, last in (days for days in spans if days)
    ]
    if not ranges:
        return None
    return ranges[0] if len(ranges) == 1 else {"$or": ranges}


def _start(day: date) -> float:
    return datetime.combine(day, time.min, tzinfo=UTC).timestamp()


def _hit(row: Sequence[Any], score: float) -> Passage:
    """A passage from a catalog row (_HIT_COLUMNS) and the score of the search that found it."""
    cid, article, text, title, outlet, author, url, published, start, end, focus, story, copy_of, index = row
    return Passage(
        cid, article, text, title, outlet, author, url, published, start, end, score,
        focus=focus, story_id=story, copy_of=copy_of, chunk_index=index,
    )  # fmt: skip
