"""The data shapes that flow from ingest to the store and on to answers."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

UNKNOWN_DATE = "date unknown"
UNKNOWN_OUTLET = "unknown outlet"
NO_HEADLINE = "No headline"


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


@dataclass(frozen=True)
class Passage:
    """A stored passage with the article facts a citation shows: what a search finds (its `score` that
    search's), what retrieval ranks (its `score` then the fused, dated one) and what an answer cites."""

    chunk_id: str
    article_id: str
    text: str
    title: str | None
    outlet: str | None
    author: str | None
    url: str | None
    published_at: str | None  # ISO 8601
    start: int  # its span in the article text
    end: int
    score: float
    similarity: float | None = None  # cosine similarity to the question, when the vector search found it
    focus: float | None = None  # how closely its article keeps to one story (None: too short to tell)
    story_id: str | None = None  # the story its article was grouped into at ingest
    copy_of: str | None = None  # the article whose near copy its article is
    chunk_index: int = 0

    @property
    def story(self) -> str:
        """Its story, or its article alone when it was never grouped."""
        return self.story_id or self.article_id

    @property
    def text_of(self) -> str:
        """The article whose text this is: the original of a near copy, else its own."""
        return self.copy_of or self.article_id

    @property
    def published_date(self) -> date | None:
        return datetime.fromisoformat(self.published_at).date() if self.published_at else None

    @property
    def headline(self) -> str:
        """Its article's headline, or a label that says there is none."""
        return headline_label(self.title)

    @property
    def outlet_name(self) -> str:
        return outlet_label(self.outlet)

    @property
    def published_day(self) -> str:
        """Its article's publish day as a reader says it ("8 May 2024"), or nothing when it is unknown."""
        day = self.published_date
        return f"{day.day} {day:%B %Y}" if day else ""

    @property
    def dateline(self) -> str:
        """Who published its article and when, as its source card shows them ("Coastal Post, published
        8 May 2024"); an article of unknown date has none."""
        return f"{self.outlet_name}, published {self.published_day}" if self.published_date else ""

    @property
    def day(self) -> str:
        """Its article's publish day (YYYY-MM-DD), or a label that says it is unknown."""
        return date_label(self.published_at)


GAP = "\n…\n"  # between two passages of one article that do not meet (a line of its own: no sentence)


def by_article(passages: Sequence[Passage]) -> list[Passage]:
    """One passage per article, in the order its first passage comes: an article's passages joined in
    their order in the article, so an answer cites each article once. Overlapping or adjacent passages
    join into one stretch of text; others are joined with an ellipsis between them."""
    grouped: dict[str, list[Passage]] = {}
    for passage in passages:
        grouped.setdefault(passage.article_id, []).append(passage)
    return [_joined(group) if len(group) > 1 else group[0] for group in grouped.values()]


def _joined(group: list[Passage]) -> Passage:
    ordered = sorted(group, key=lambda p: (p.start, p.end))
    text, end = ordered[0].text, ordered[0].end
    for passage in ordered[1:]:
        if passage.end <= end:  # inside what is already joined
            continue
        # A passage's text is article.text[start:end], so an overlap is cut off exactly.
        text += passage.text[end - passage.start :] if passage.start <= end else GAP + passage.text
        end = passage.end
    similarities = [p.similarity for p in group if p.similarity is not None]
    return replace(
        group[0],
        text=text,
        start=ordered[0].start,
        end=end,
        chunk_index=ordered[0].chunk_index,
        similarity=max(similarities) if similarities else None,
    )


_DAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d"
_DIGEST = re.compile(
    rf"\bthings (?:to know|you need to know)(?: today)?:?(?: (?:for|on))? (?:{_DAYS}|{_MONTHS})"
    r"|\bthings you need to know today\b|\bdaily briefing\b|\bnews quiz\b|\bweek in review\b"
    r"|\b(?:morning|evening) briefing\b",
    re.IGNORECASE,
)


def is_digest(title: str | None) -> bool:
    """Whether a headline is a digest's ("5 things to know for Nov. 23", "Daily Briefing"): a page of many
    stories, none of which it reports as a story's own article does."""
    return bool(title and _DIGEST.search(title))


def headline_label(title: str | None) -> str:
    return title or NO_HEADLINE


def outlet_label(outlet: str | None) -> str:
    return outlet or UNKNOWN_OUTLET


def date_label(published_at: str | None) -> str:
    """A publish time as its day (YYYY-MM-DD), or "date unknown"."""
    return published_at[:10] if published_at else UNKNOWN_DATE
