"""Writes, journalled. Chroma and SQLite cannot share a transaction, so article ids are marked pending
before their vectors are written and unmarked in the transaction that commits their catalog rows: an
article counts as stored once its catalog row is committed. A run that was killed leaves pending ids
behind, and `recover()` removes whatever those articles left, so the next run writes them again."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rag.documents import Article, StoryLink
from rag.store.catalog import ARTICLE_COLUMNS, BATCH, Catalog
from rag.store.periods import DAY_BITS, first_rowid, period_of
from rag.store.records import ArticleWrite, StoreError, chunk_metadata, timestamp
from rag.store.vectors import Vectors

DAY_ROWS = 1 << DAY_BITS

FOCUS_MIN_PASSAGES = 3  # an article's focus is measured from this many passages up (shorter ones keep to one)


class Writes(Vectors, Catalog):
    """Storing, replacing and removing articles, and what ingest records beside them."""

    _turn_lock: threading.RLock  # the app's threads take turns within the process
    _turns: int
    _writes_seen: str | None  # the count of writes at the end of this writer's last turn
    others_wrote: bool

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn to write and hold it for the duration (again inside is a no-op):
        every journalled write takes it, so what the journal holds when a turn begins was left by a
        writer that died. `others_wrote` says whether another writer wrote since this one's last turn."""
        with self._turn_lock:
            if self._turns:
                self._turns += 1
                try:
                    yield
                finally:
                    self._turns -= 1
                return
            with self.database.write_turn():
                self._turns = 1
                try:
                    self.others_wrote = self._writes_seen != self._writes_counted()
                    yield
                finally:
                    self._turns = 0
                    self._writes_seen = self._writes_counted()

    def _writes_counted(self) -> str | None:
        """The count of journalled writes the store has taken, by every writer."""
        found = self._row("SELECT value FROM meta WHERE key = 'writes'")
        return found[0] if found else None

    def recover(self) -> list[str]:
        """Remove what an interrupted run left of the articles it was writing; return their ids. Taken in
        a turn, so no live writer's articles are among them."""
        with self.turn():
            rows = self._rows("SELECT article_id, periods FROM pending")
            if rows:
                self.remove(
                    [row[0] for row in rows], periods=[p for row in rows for p in json.loads(row[1] or "[]")]
                )
        return [row[0] for row in rows]

    def write(
        self, writes: Sequence[ArticleWrite], *, replacing: Iterable[str] = (), run: str | None = None
    ) -> None:
        """Store articles with their passages; `replacing` names those whose older version is stored, and
        `run` (its start, ISO 8601) the ingest run they belong to, recorded with them."""
        if not writes:
            return
        with self.turn():
            ids = [w.article.article_id for w in writes]
            stored = self._stored_periods(ids)
            period = {w.article.article_id: period_of(_published_ts(w.article)) for w in writes}
            self._mark_pending({i: {period[i], *stored.get(i, ())} for i in ids})
            grouped: dict[str, tuple[list[str], list[Any], list[dict[str, Any]]]] = {}
            for item in writes:
                chunk_ids, vectors, metadatas = grouped.setdefault(
                    period[item.article.article_id], ([], [], [])
                )
                for chunk, vector in zip(item.chunks, item.vectors, strict=True):
                    chunk_ids.append(chunk.chunk_id)
                    vectors.append(vector)
                    metadatas.append(chunk_metadata(item.article, chunk))
            for into, (chunk_ids, vectors, metadatas) in grouped.items():
                self._upsert(into, chunk_ids, vectors, metadatas)
            counts = {w.article.article_id: len(w.chunks) for w in writes}
            for article_id, periods in stored.items():
                # A version of another month leaves its collection; a shorter one must not leave its tail.
                self._delete_where(periods - {period[article_id]}, {"article_id": article_id})
                tail = {"$and": [{"article_id": article_id}, {"chunk_index": {"$gte": counts[article_id]}}]}
                self._delete_where({period[article_id]}, tail)
            changed = set(replacing) & counts.keys()
            with self._transaction():
                for item in writes:
                    if item.article.article_id in changed:  # (the version it replaces is kept on record)
                        self._execute(
                            "INSERT INTO article_versions SELECT article_id, content_hash, ingested_at, "
                            "updated_at FROM articles WHERE article_id = ? AND content_hash <> ?",
                            (item.article.article_id, item.article.content_hash),
                        )
                    self._delete_rows(item.article.article_id)
                    self._insert_article(
                        item.article,
                        len(item.chunks),
                        duplicate_of=None,
                        focus=article_focus(item.vectors),
                        story=item.story,
                    )
                    self._insert_passages(item)
                if run:
                    self._count_run(run, new=len(writes) - len(changed), changed=len(changed))
                self._execute(
                    "INSERT INTO meta VALUES ('writes', '1') ON CONFLICT (key) DO UPDATE "
                    "SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)"
                )
                self._executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in ids])
            self.split_full(self._shelves(set(period.values())))

    def record_duplicates(
        self,
        duplicates: Sequence[tuple[Article, str]],
        *,
        stories: dict[str, StoryLink] | None = None,
        run: str | None = None,
    ) -> None:
        """Record articles whose text is already stored under another id (in the story `stories` gives
        them, for the ingest `run`); nothing is embedded."""
        stories = stories or {}
        if not duplicates:
            return
        with self.turn():
            ids = [article.article_id for article, _ in duplicates]
            stored = self._stored_periods(ids)
            self._mark_pending(stored)
            self._delete_vectors(ids, stored)
            with self._transaction():
                for article, original in duplicates:
                    self._delete_rows(article.article_id)
                    self._insert_article(
                        article, 0, duplicate_of=original, story=stories.get(article.article_id)
                    )
                if run:
                    self._count_run(run, new=0, changed=0)
                self._executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in ids])

    def remove(self, article_ids: Sequence[str], *, periods: Iterable[str] = ()) -> None:
        """Remove articles: their vectors (in the periods the catalog gives them, and `periods`), keyword
        rows and catalog rows."""
        if not article_ids:
            return
        with self.turn():
            stored = self._stored_periods(article_ids)
            extra = set(periods)
            where = {i: stored.get(i, set()) | extra for i in article_ids}
            self._mark_pending(where)
            self._delete_vectors(article_ids, where)
            with self._transaction():
                for article_id in article_ids:
                    self._delete_rows(article_id)
                    self._execute("DELETE FROM article_versions WHERE article_id = ?", (article_id,))
                self._executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in article_ids])

    def set_stories(self, links: dict[str, StoryLink]) -> None:
        """Record the stories of articles already stored."""
        with self._transaction():
            self._executemany(
                "UPDATE articles SET story_id = ?, copy_of = ?, minhash = ? WHERE article_id = ?",
                [(link.story_id, link.copy_of, link.signature, i) for i, link in links.items()],
            )

    def clear_stories(self) -> None:
        """Forget every article's story, so that they are grouped again."""
        with self._transaction():
            self._execute("UPDATE articles SET story_id = NULL, copy_of = NULL, minhash = NULL")

    def _count_run(self, started_at: str, *, new: int, changed: int) -> None:
        """Count what an ingest run stored, for "what's new since the last ingest", in the transaction that
        stores it: a run killed after any commit is remembered for what it did store."""
        self._execute(
            "INSERT INTO ingest_runs AS r VALUES (?, ?, ?, ?) ON CONFLICT (started_at) DO UPDATE SET "
            "finished_at = excluded.finished_at, new = r.new + excluded.new, "
            "changed = r.changed + excluded.changed",
            (started_at, datetime.now(UTC).isoformat(timespec="seconds"), new, changed),
        )

    def _measure_focus(self) -> None:
        """Measure the focus of stored articles that lack it (a store from before it was kept), from the
        passage vectors Chroma holds: one pass over them, the first time such a store is opened (then the
        store records that it keeps focus, and is not asked again)."""
        if self._row("SELECT 1 FROM meta WHERE key = 'focus'") is not None:
            return
        missing = [
            row[0]
            for row in self._rows(
                "SELECT article_id FROM articles WHERE focus IS NULL AND chunk_count >= ?",
                (FOCUS_MIN_PASSAGES,),
            )
        ]
        test, values = self._in(missing)
        owner = dict(
            self._rows(f"SELECT chunk_id, article_id FROM passages WHERE article_id {test}", (values,))
        )
        vectors: dict[str, list[Sequence[float]]] = {}
        for article_id, vector in self._vectors_of(owner):
            vectors.setdefault(article_id, []).append(vector)
        with self._transaction():
            self._executemany(
                "UPDATE articles SET focus = ? WHERE article_id = ?",
                [(article_focus(v), article_id) for article_id, v in vectors.items()],
            )
            self._execute("INSERT INTO meta VALUES ('focus', 'kept') ON CONFLICT (key) DO NOTHING")

    def _delete_vectors(self, article_ids: Sequence[str], periods: dict[str, set[str]]) -> None:
        """Delete these articles' vectors from the collections of the periods given for each."""
        by_period: dict[str, list[str]] = {}
        for article_id in article_ids:
            for period in periods.get(article_id, ()):
                by_period.setdefault(period, []).append(article_id)
        for period, ids in by_period.items():
            for start in range(0, len(ids), BATCH):
                self._delete_where([period], {"article_id": {"$in": ids[start : start + BATCH]}})

    def _stored_periods(self, article_ids: Sequence[str]) -> dict[str, set[str]]:
        """The period of each of these articles that the catalog holds."""
        test, values = self._in(article_ids)
        rows = self._rows(f"SELECT article_id, published_ts FROM articles WHERE article_id {test}", (values,))
        return {article_id: {period_of(ts)} for article_id, ts in rows}

    def _mark_pending(self, periods: dict[str, set[str]]) -> None:
        """Mark articles as being written, with the periods whose collections their vectors may be in."""
        test, values = self._in(periods)
        with self._transaction():  # an id already pending keeps the periods it was marked with too
            held = self._rows(f"SELECT article_id, periods FROM pending WHERE article_id {test}", (values,))
            marked = {article_id: set(json.loads(found or "[]")) for article_id, found in held}
            self._executemany(
                "INSERT INTO pending (article_id, periods) VALUES (?, ?) "
                "ON CONFLICT (article_id) DO UPDATE SET periods = excluded.periods",
                [(i, json.dumps(sorted(p | marked.get(i, set())))) for i, p in periods.items()],
            )

    def _insert_passages(self, item: ArticleWrite) -> None:
        """Insert an article's passages, numbered in its publish day's rows."""
        first = self._next_rowid("passages", _published_ts(item.article))
        title = item.article.title
        self.database.insert_rows(
            "passages",
            ("rowid", "chunk_id", "article_id", "chunk_index", "start", "end", "title", "text"),
            [
                (first + n, c.chunk_id, c.article_id, c.index, c.start, c.end, title, c.text)
                for n, c in enumerate(item.chunks)
            ],
        )

    def _next_rowid(self, table: str, published_ts: float | None) -> int:
        """The first free row id of the publish day of `published_ts` in `table` (ordered by publish day)."""
        first = first_rowid(published_ts)
        (last,) = self._row(
            f"SELECT max(rowid) FROM {table} WHERE rowid BETWEEN ? AND ?", (first, first + DAY_ROWS - 1)
        )
        if last is not None and last + 1 >= first + DAY_ROWS:
            raise StoreError(f"More than {DAY_ROWS} rows published on one day; the store cannot hold more.")
        return first if last is None else last + 1

    def _delete_rows(self, article_id: str) -> None:
        self._execute("DELETE FROM passages WHERE article_id = ?", (article_id,))
        self._execute("DELETE FROM articles WHERE article_id = ?", (article_id,))

    def _insert_article(
        self,
        article: Article,
        chunk_count: int,
        *,
        duplicate_of: str | None,
        focus: float | None = None,
        story: StoryLink | None = None,
    ) -> None:
        published_ts = _published_ts(article)
        self._execute(
            f"INSERT INTO articles (rowid, {ARTICLE_COLUMNS}, published_ts, focus, minhash) "
            f"VALUES ({', '.join('?' * 19)})",
            (
                self._next_rowid("articles", published_ts),
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
                published_ts,
                focus,
                story.signature if story else None,
            ),
        )


def _published_ts(article: Article) -> float | None:
    return timestamp(article.published_at) if article.published_at else None


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
