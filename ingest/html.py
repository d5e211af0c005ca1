"""Web pages: decoded by the charset they declare, and their main text and metadata found by trafilatura."""

from __future__ import annotations

import re

import trafilatura
from trafilatura.settings import Document

from ingest.fields import as_text, headline_from_url, outlet_from_url, parse_published, web_url
from ingest.text import SNIFF_BYTES, Failure, bom_encoding, decode_bytes, normalize_text
from rag.documents import Article

MIN_HTML_WORDS = 10  # fewer words of main text: an error page, a cookie wall or broken markup

# Only to decode a page's bytes; its metadata is trafilatura's to find.
HTML_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decode_html(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Decode a web page as UTF-8, else in the charset it declares, else as decode_bytes does."""
    if bom_encoding(data):
        return decode_bytes(data)
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        declared = HTML_CHARSET.search(data[:SNIFF_BYTES])
    try:
        return (data.decode(declared.group(1).decode("ascii")), ()) if declared else decode_bytes(data)
    except (LookupError, UnicodeDecodeError):
        return decode_bytes(data)


def html_article(
    html: str, *, where: str, fallback_id: str, warnings: tuple[str, ...] = (), page_url: str | None = None
) -> Article | Failure:
    """Build an article from a web page's main text and metadata, as trafilatura finds them.

    `where` names the page in messages (a file, or the URL it was fetched from as `page_url`); the
    article's id is its canonical URL, else `fallback_id`.
    """
    page = _extract_page(html, url=page_url)
    if isinstance(page, str):
        return Failure(where, page)
    text = normalize_text(page.text or "")
    if len(text.split()) < MIN_HTML_WORDS:
        return Failure(where, "no article text found in the HTML")
    title = as_text(page.title)
    first, _, rest = text.partition("\n")
    url = web_url(page.url)
    return Article(
        article_id=url or fallback_id,
        text=rest.strip() if title and first == title and rest.strip() else text,
        source=where,
        title=title or headline_from_url(url),
        outlet=as_text(page.sitename) or outlet_from_url(url),
        author=as_text((page.author or "").replace("; ", ", ")),
        url=url,
        published_at=parse_published(page.date),
        warnings=warnings,
    )


def _extract_page(html: str, *, url: str | None = None) -> Document | str:
    """Run trafilatura on a page; return its result, or the reason it gave none."""
    # Only the page's markup (meta, JSON-LD, <time>, URL) dates it, not dates in the text; a date in the
    # URL is the fallback, since <meta> also has the time.
    date_params = {
        "original_date": True,
        "extensive_search": False,
        "deferred_url_extractor": True,
        "outputformat": "%Y-%m-%dT%H:%M:%S%z",
    }
    try:
        page = trafilatura.bare_extraction(
            html, url=url, with_metadata=True, include_comments=False, date_extraction_params=date_params
        )
    except Exception as exc:  # a parser on untrusted input: report the page, keep the run going
        return f"could not parse the HTML ({exc})"
    return page if isinstance(page, Document) else "no article text found in the HTML"
