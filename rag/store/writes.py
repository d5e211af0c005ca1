"""Writes, journalled. Chroma and SQLite cannot share a transaction, so article ids are marked pending
before their vectors are written and unmarked in the transaction that commits their catalog rows: an
article counts as stored once its catalog row is committed. A run that was killed leaves pending ids
behind, and `recover()` removes whatever those articles left, so the next run writes them again."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np

from rag.documents import Article, StoryLink
from rag.store.catalog import ARTICLE_COLUMNS, BATCH, Catalog
from rag.store.records import ArticleWrite, chunk_metadata, timestamp

FOCUS_MIN_PASSAGES = 3  # an article's focus is measured from this many passages up (shorter ones keep to one)


class Writes(Catalog):
    """Storing, replacing and removing articles, and what ingest records beside them."""

    def recover(self) -> list[str]:
        """Remove what an interrupted run left of the articles it was writing; return their ids."""
        pending = [row[0] for row in self._rows("SELECT article_id FROM pending")]
        if pending:
            self.remove(pending)
        return pending

    def write(
        self, writes: Sequence[ArticleWrite], *, replacing: Iterable[str] = (), run: str | None = None
    ) -> None:
        """Store articles with their passages; `replacing` names those whose older version is stored, and
        `run` (its start, ISO 8601) the ingest run they belong to, recorded with them."""
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
        for start in range(0, len(chunk_ids), BATCH):
            end = start + BATCH
            self.collection.upsert(
                ids=chunk_ids[start:end],
                embeddings=vectors[start:end],
                documents=documents[start:end],
                metadatas=metadatas[start:end],
            )
        counts = {w.article.article_id: len(w.chunks) for w in writes}
        changed = set(replacing) & counts.keys()
        for article_id in changed:
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
            if run:
                self._count_run(run, new=len(writes) - len(changed), changed=len(changed))
            self.db.executemany("DELETE FROM pending WHERE article_id = ?", [(i,) for i in ids])

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
        ids = [article.article_id for article, _ in duplicates]
        self._mark_pending(ids)
        self._delete_vectors(ids)
        with self._transaction():
            for article, original in duplicates:
                self._delete_rows(article.article_id)
                self._insert_article(article, 0, duplicate_of=original, story=stories.get(article.article_id))
            if run:
                self._count_run(run, new=0, changed=0)
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

    def _count_run(self, started_at: str, *, new: int, changed: int) -> None:
        """Count what an ingest run stored, for "what's new since the last ingest", in the transaction that
        stores it: a run killed after any commit is remembered for what it did store."""
        self.db.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, ?) ON CONFLICT (started_at) DO UPDATE SET "
            "finished_at = excluded.finished_at, new = new + excluded.new, "
            "changed = changed + excluded.changed",
            (started_at, datetime.now(UTC).isoformat(timespec="seconds"), new, changed),
        )

    def _measure_focus(self) -> None:
        """Measure the focus of stored articles that lack it (a store from before it was kept), from the
        passage vectors Chroma holds: one pass over them, the first time such a store is opened."""
        missing = [
            row[0]
            for row in self._rows(
                "SELECT article_id FROM articles WHERE focus IS NULL AND chunk_count >= ?",
                (FOCUS_MIN_PASSAGES,),
            )
        ]  # a scan of the catalog's articles only: every store is asked this when it opens
        if not missing:
            return
        owner = dict(
            self._rows(
                "SELECT chunk_id, article_id FROM passages "
                "WHERE article_id IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            )
        )
        vectors: dict[str, list[Sequence[float]]] = {}
        for article_id, vector in self._vectors_of(owner):
            vectors.setdefault(article_id, []).append(vector)
        with self._transaction():
            self.db.executemany(
                "UPDATE articles SET focus = ? WHERE article_id = ?",
                [(article_focus(v), article_id) for article_id, v in vectors.items()],
            )

    def _delete_vectors(self, article_ids: Sequence[str]) -> None:
        for start in range(0, len(article_ids), BATCH):
            batch = list(article_ids[start : start + BATCH])
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
            f"INSERT INTO articles ({ARTICLE_COLUMNS}, published_ts, focus, minhash) "
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
                timestamp(article.published_at) if article.published_at else None,
                focus,
                story.signature if story else None,
            ),
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
