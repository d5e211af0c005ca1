"""The data shapes that flow from ingest to the store and on to answers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Article:
    """One news article: its text and the metadata a reader checks a claim against."""

    article_id: str
    text: str
    source: str  # file path (with `#record` for collections) the article came from
    title: str | None = None
    outlet: str | None = None
    author: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None  # a feed entry's last update, kept beside its publish date
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def text_hash(self) -> str:
        """Hash of the text alone: equal texts are duplicate stories."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def content_hash(self) -> str:
        """Hash of the text and the metadata answers show: a change in either is a changed article."""
        fields = [self.text, self.title, self.outlet, self.author, self.url, self.published_iso]
        if self.updated_at:  # only when known, so articles without one keep the hash they had
            fields.append(self.updated_at.isoformat())
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()

    @property
    def published_iso(self) -> str | None:
        """The publish date as ISO 8601, or None when unknown."""
        return self.published_at.isoformat() if self.published_at else None


@dataclass(frozen=True)
class StoryLink:
    """The story an article was grouped into at ingest."""

    story_id: str
    copy_of: str | None  # the stored article it is a near copy of (syndicated or re-posted text)
    signature: bytes | None = None  # MinHash of its shingles, kept to compare later articles with


@dataclass(frozen=True)
class Chunk:
    """A passage of an article, with its character span in the article text."""

    article_id: str
    index: int
    text: str
    start: int
    end: int

    @property
    def chunk_id(self) -> str:
        """Stable id: writing the same position again replaces the passage."""
        return chunk_id(self.article_id, self.index)


def chunk_id(article_id: str, index: int) -> str:
    """Return the id of passage `index` of an article."""
    return f"{article_id}::{index}"
