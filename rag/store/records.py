"""What the store takes and gives back: its errors, the catalog's rows, and the metadata Chroma keeps with
each passage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from rag.documents import Article, Chunk, StoryLink

UNKNOWN_TS = -1e12  # published_ts of an article whose date is unknown, in Chroma metadata


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
    title: str | None = None


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
class Updates:
    """An article that changed under its id: when its current version dates from, and each earlier
    version's content hash and date (stored, or updated by its outlet), oldest first."""

    last: str  # ISO 8601
    earlier: tuple[tuple[str, str], ...]

    @property
    def times(self) -> int:
        return len(self.earlier)


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

    def size_line(self) -> str:
        """The store's size in words: "6,624 articles · 76,895 passages · 212 outlets"."""
        counts = ((self.articles, "article"), (self.passages, "passage"), (len(self.outlets), "outlet"))
        return " · ".join(f"{n:,} {word}{'' if n == 1 else 's'}" for n, word in counts)


@dataclass(frozen=True)
class ArticleWrite:
    """One article to store, with its passages and their vectors."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: Sequence[Sequence[float]]
    story: StoryLink | None = None


CHROMA_KEYS = ("article_id", "chunk_index", "outlet", "published_ts")  # what Chroma keeps of a passage


def chunk_metadata(article: Article, chunk: Chunk) -> dict[str, Any]:
    """Return the metadata Chroma keeps with a passage: what its filters and deletes read, nothing more.

    The passage's text, headline and address live in the catalog; Chroma kept a copy of each with a trigram
    index over the text, which made it four times the size of the vectors it serves (`docs/benchmarks.md`).
    """
    published = article.published_at
    metadata: dict[str, Any] = {  # CHROMA_KEYS
        "article_id": article.article_id,
        "chunk_index": chunk.index,
        "outlet": article.outlet,
        # Chroma cannot match a missing key, so an unknown date is a far-past sentinel: `as_of` keeps it,
        # an explicit range drops it.
        "published_ts": timestamp(published) if published else UNKNOWN_TS,
    }
    return {key: value for key, value in metadata.items() if value is not None}


def timestamp(moment: datetime) -> float:
    """Seconds since the epoch; dates without a zone are taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def day_of(published_at: str | None) -> date | None:
    """The day of an ISO publish time, or None when unknown."""
    return datetime.fromisoformat(published_at).date() if published_at else None
