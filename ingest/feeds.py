"""Articles from the web: entries of RSS and Atom feeds, and article pages.

A feed entry's id is its GUID, else its link; its publish date is the entry's (`published`, else
`updated`), else its page's, never the time it was fetched. An entry that carries only a teaser is read from
its page, with the same extraction as HTML files. Validators (ETag, Last-Modified) are handed back to be
remembered once the articles are stored, so an unchanged feed costs one 304 next time.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
import lxml.etree
import lxml.html

from ingest.fields import as_text, headline_from_url, outlet_from_url, web_url
from ingest.html import decode_html, html_article
from ingest.plan import StoredCatalog
from ingest.text import Failure, normalize_text
from ingest.web import Fetcher, FetchError
from rag.documents import Article
from rag.store import StoredArticle

MIN_ENTRY_WORDS = 40  # an entry with less text is a teaser: the article is read from its page
BLOCK_TAGS = frozenset(
    "p div section article blockquote li ul ol h1 h2 h3 h4 h5 h6 pre table tr figure figcaption".split()
)

Validators = tuple[str | None, str | None]  # (ETag, Last-Modified)


@dataclass
class WebReader:
    """Reads feeds and pages for one ingest run, and keeps what the run summary and the store need."""

    fetcher: Fetcher
    catalog: StoredCatalog
    validators_of: Callable[[str], Validators]
    validators: dict[str, Validators] = field(default_factory=dict)  # to remember once stored
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0  # articles known unchanged without reading them (304, or an entry not updated)

    def read(self, pages: list[str], feeds: list[str]) -> Iterator[Article | Failure]:
        """Yield the articles of every page and feed, and a Failure for each that gave none."""
        for url in pages:
            page = self.page(url)
            if page is not None:
                yield page
        for url in feeds:
            yield from self.feed(url)

    def page(self, url: str, *, conditional: bool = True) -> Article | Failure | None:
        """The article on a page, or None when the server says it has not changed since it was stored.

        An entry's page is fetched unconditionally (`conditional=False`): its entry says whether it changed.
        """
        etag, modified = self.validators_of(url) if conditional else (None, None)
        try:
            fetched = self.fetcher.get(url, etag=etag, last_modified=modified)
        except FetchError as error:
            return Failure(url, str(error))
        if fetched.not_modified:
            self.unchanged += 1
            return None
        html, warnings = decode_html(fetched.body)
        article = html_article(
            html, where=url, fallback_id=fetched.url, warnings=warnings, page_url=fetched.url
        )
        if conditional and isinstance(article, Article):
            self.validators[url] = (fetched.etag, fetched.last_modified)
        return article

    def feed(self, url: str) -> Iterator[Article | Failure]:
        """Yield the articles of a feed's entries; nothing when the server says it has not changed."""
        etag, modified = self.validators_of(url)
        try:
            fetched = self.fetcher.get(url, etag=etag, last_modified=modified)
        except FetchError as error:
            yield Failure(url, str(error))
            return
        if fetched.not_modified:
            self.notes.append(f"{url}: not modified since the last poll")
            return
        parsed = feedparser.parse(
            fetched.body,
            response_headers={"content-location": fetched.url, "content-type": fetched.content_type},
        )
        if not parsed.get("version"):
            reason = parsed.get("bozo_exception") or "no feed elements"
            yield Failure(url, f"not an RSS or Atom feed ({reason})")
            return
        feed_title = as_text(parsed.feed.get("title"))
        failed, skipped = False, 0
        for number, entry in enumerate(parsed.entries, start=1):
            item = self._entry(entry, number, feed_url=url, feed_title=feed_title)
            if item is None:
                skipped += 1
                continue
            failed |= isinstance(item, Failure)
            yield item
        if not failed:  # an entry that failed is tried again next poll, so the feed is fetched in full
            self.validators[url] = (fetched.etag, fetched.last_modified)
        self.unchanged += skipped
        self.notes.append(
            f"{url}: {len(parsed.entries)} entries"
            + (f", {skipped} not updated since stored" if skipped else "")
        )

    def _entry(
        self, entry: Mapping[str, Any], number: int, *, feed_url: str, feed_title: str | None
    ) -> Article | Failure | None:
        link = web_url(entry.get("link"))
        entry_id = as_text(entry.get("id")) or link
        where = f"{feed_url}#{entry_id or number}"
        if not entry_id:
            return Failure(where, "the entry has neither a GUID nor a link")
        published = _entry_time(entry, "published") or _entry_time(entry, "updated")
        updated = _entry_time(entry, "updated")
        title, author = as_text(entry.get("title")), as_text(entry.get("author"))
        outlet = feed_title or outlet_from_url(link or feed_url)
        text = entry_text(entry)
        warnings: tuple[str, ...] = ()
        if len(text.split()) < MIN_ENTRY_WORDS and link:
            stored = self.catalog.articles([entry_id]).get(entry_id)
            if stored is not None and _same_times(stored, published, updated):
                return None  # a teaser whose article is stored and not updated since: not fetched again
            page = self.page(link, conditional=False)
            if not isinstance(page, Article):
                if not text:
                    return Failure(where, f"its page {link}: {page.reason if page else 'not read'}")
                reason = page.reason if page else "not read"
                warnings = (f"its page {link} could not be read ({reason}); the feed's summary is stored",)
            else:
                text, title, author = page.text, title or page.title, author or page.author
                outlet, published = page.outlet or outlet, published or page.published_at
        if not text:
            return Failure(where, "the entry has no text and no link to read it from")
        return Article(
            article_id=entry_id,
            text=text,
            source=feed_url,
            title=title or headline_from_url(link),
            outlet=outlet,
            author=author,
            url=link,
            published_at=published,
            updated_at=updated,
            warnings=warnings,
        )


def entry_text(entry: Mapping[str, Any]) -> str:
    """The text of an entry: its full content when the feed carries it, else its summary."""
    candidates = [part.get("value", "") for part in entry.get("content") or []]
    candidates.append(entry.get("summary") or "")
    return max((html_text(c) for c in candidates if c), key=len, default="")


def html_text(markup: str) -> str:
    """Plain text of an HTML fragment, one paragraph per block element."""
    if "<" not in markup:
        return normalize_text(markup)
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return normalize_text(markup)
    for junk in list(root.iter("script", "style")):
        junk.drop_tree()
    for element in root.iter():
        if element.tag == "br":
            element.tail = "\n" + (element.tail or "")
        elif element.tag in BLOCK_TAGS:
            element.tail = "\n\n" + (element.tail or "")
    return normalize_text(root.text_content())


def _entry_time(entry: Mapping[str, Any], name: str) -> datetime | None:
    """An entry's `published` or `updated` time, in UTC (feedparser normalises both to UTC)."""
    # dict.get: feedparser's own get answers `updated` with the published time when there is none.
    parsed = dict.get(entry, f"{name}_parsed")  # type: ignore[call-overload]
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _same_times(stored: StoredArticle, published: datetime | None, updated: datetime | None) -> bool:
    iso = lambda value: value.isoformat() if value else None
    return stored.updated_at == iso(updated) and (published is None or stored.published_at == iso(published))
