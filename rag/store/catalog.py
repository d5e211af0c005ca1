"""Reads of the catalog: the articles stored, the corpus at a glance, stories and their reports, and the
vectors of articles' passages that story grouping compares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from rag.store.lock import Guarded
from rag.store.records import CorpusOverview, Report, StoredArticle, StoryMember, Updates, day_of

BATCH = 1000  # ids per Chroma call, well under its max batch size
ARTICLE_COLUMNS = (
    "article_id, source, content_hash, text_hash, title, outlet, author, url, published_at, "
    "chunk_count, duplicate_of, ingested_at, updated_at, story_id, copy_of"
)
_REPORT_COLUMNS = "article_id, story_id, title, outlet, published_at, url, ingested_at"


class Catalog(Guarded):
    """What is stored, read from the catalog (and, for passage vectors, from Chroma)."""

    def articles(self, ids: Iterable[str] | None = None) -> dict[str, StoredArticle]:
        """The catalog rows of these article ids (every row when None), by article id."""
        if ids is None:
            rows = self._rows(f"SELECT {ARTICLE_COLUMNS} FROM articles")
        else:
            test, values = self._in(ids)
            rows = self._rows(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE article_id {test}", (values,))
        return {row[0]: StoredArticle(*row) for row in rows}

    def articles_under(self, path: str) -> dict[str, StoredArticle]:
        """The catalog rows of the articles read from a file, or from the files under a folder."""
        # Its records are "path#n", the files under it "path/..."; '$' follows '#' and '0' follows '/'.
        folder = path.rstrip("/")
        rows = self._rows(
            f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE source = ? OR (source >= ? AND source < ?) "
            "OR (source >= ? AND source < ?)",
            (path, path + "#", path + "$", folder + "/", folder + "0"),
        )
        return {row[0]: StoredArticle(*row) for row in rows}

    def text_holders(self, text_hashes: Iterable[str]) -> dict[str, set[str]]:
        """The stored articles that hold each of these texts as their own (not as a duplicate of another)."""
        test, values = self._in(sorted(set(text_hashes)))
        rows = self._rows(
            f"SELECT text_hash, article_id FROM articles WHERE duplicate_of IS NULL AND text_hash {test}",
            (values,),
        )
        holders: dict[str, set[str]] = {}
        for text_hash, article_id in rows:
            holders.setdefault(text_hash, set()).add(article_id)
        return holders

    def overview(self) -> CorpusOverview:
        """Summarise the corpus: articles, passages, outlets, publish dates and the last ingest."""
        # From the counts the writes keep and the ends of indexes: nothing here grows with the store.
        dated = "SELECT published_at FROM articles WHERE published_ts IS NOT NULL ORDER BY published_ts"
        with self._lock:  # one consistent view of the catalog
            articles, passages = self._row(
                "SELECT CAST(sum(articles) AS INTEGER), CAST(sum(passages) AS INTEGER) FROM periods"
            )
            undated = self._row("SELECT articles FROM periods WHERE period = 'undated'")
            earliest, latest = self._row(f"{dated} LIMIT 1"), self._row(f"{dated} DESC LIMIT 1")
            (last,) = self._row("SELECT max(ingested_at) FROM articles")
            outlets = [
                row[0] for row in self._rows("SELECT outlet FROM outlets WHERE articles > 0 ORDER BY 1")
            ]
        return CorpusOverview(
            articles or 0,
            passages or 0,
            outlets,
            earliest[0] if earliest else None,
            latest[0] if latest else None,
            undated[0] if undated else 0,
            last,
        )

    def last_run(self) -> str | None:
        """When the last ingest run that stored something started (ISO 8601), or None."""
        row = self._row("SELECT max(started_at) FROM ingest_runs")
        return row[0] if row else None

    # Stories

    def story_members(self, days: tuple[date, date] | None) -> list[StoryMember]:
        """The stored articles with their own text and a story, as story grouping compares them, published
        between two days (UTC, both included), or undated for None."""
        if days is None:
            clause, params = "published_ts IS NULL", []
        else:
            clause, params = (
                "published_ts >= ? AND published_ts < ?",
                [_day_start(days[0]), _day_start(days[1]) + 86400],
            )
        return self._members(clause, params)

    def story_members_of(self, article_ids: Sequence[str]) -> list[StoryMember]:
        """The stored articles of these ids that have their own text and a story."""
        test, values = self._in(article_ids)
        return self._members(f"article_id {test}", [values])

    def _members(self, clause: str, params: Sequence[Any]) -> list[StoryMember]:
        rows = self._rows(
            "SELECT article_id, story_id, copy_of, published_at, minhash, title FROM articles "
            f"WHERE story_id IS NOT NULL AND duplicate_of IS NULL AND {clause}",
            params,
        )
        return [StoryMember(a, s, c, day_of(p), m, t) for a, s, c, p, m, t in rows]

    def without_story(self) -> list[tuple[str, date | None, str | None]]:
        """Articles not yet grouped (a store from before stories, or after `clear_stories`), oldest first:
        (article id, publish date, id of the article whose text it duplicates)."""
        rows = self._rows(
            "SELECT article_id, published_at, duplicate_of FROM articles WHERE story_id IS NULL "
            "ORDER BY duplicate_of IS NOT NULL, published_ts IS NULL, published_ts, article_id"
        )
        return [(a, day_of(p), d) for a, p, d in rows]

    def updates(self, article_ids: Iterable[str]) -> dict[str, Updates]:
        """How often each of these articles changed under its id, and when its current version was stored
        (or, when its outlet says, last updated); articles that never changed are left out."""
        test, values = self._in(sorted(set(article_ids)))
        rows = self._rows(
            "SELECT v.article_id, v.content_hash, v.ingested_at, v.updated_at, a.ingested_at, a.updated_at "
            "FROM article_versions v JOIN articles a ON a.article_id = v.article_id "
            f"WHERE v.article_id {test} ORDER BY v.ingested_at",
            (values,),
        )
        found: dict[str, Updates] = {}
        for article_id, content_hash, stored, updated, last_stored, last_updated in rows:
            earlier = found[article_id].earlier if article_id in found else ()
            found[article_id] = Updates(
                last_updated or last_stored, (*earlier, (content_hash, updated or stored))
            )
        return found

    def story_reports(self, story_ids: Iterable[str]) -> dict[str, list[Report]]:
        """Every article of these stories, oldest first."""
        test, values = self._in(sorted(set(story_ids)))
        rows = self._rows(
            f"SELECT {_REPORT_COLUMNS} FROM articles WHERE story_id {test} ORDER BY published_ts, article_id",
            (values,),
        )
        reports: dict[str, list[Report]] = {}
        for row in rows:
            reports.setdefault(row[1], []).append(Report(*row))
        return reports

    def reports_since(self, *, ingested: str | None = None, published: float | None = None) -> list[Report]:
        """Articles ingested at or after an ISO time, or published at or after a timestamp."""
        clause, value = ("ingested_at >= ?", ingested) if ingested else ("published_ts >= ?", published)
        rows = self._rows(
            f"SELECT {_REPORT_COLUMNS} FROM articles WHERE story_id IS NOT NULL AND {clause}", (value,)
        )
        return [Report(*row) for row in rows]

    def passage_texts(self, article_ids: Sequence[str]) -> dict[str, list[str]]:
        """The stored passages of these articles, in order."""
        texts: dict[str, list[str]] = {}
        test, values = self._in(article_ids)
        rows = self._rows(
            f"SELECT article_id, text FROM passages WHERE article_id {test} ORDER BY article_id, chunk_index",
            (values,),
        )
        for article_id, text in rows:
            texts.setdefault(article_id, []).append(text)
        return texts


def _day_start(day: date) -> float:
    return datetime.combine(day, time.min, tzinfo=UTC).timestamp()
