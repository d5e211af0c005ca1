"""An article's metadata as sources write it: the field names looked for, values made into tidy text, links
and outlets from addresses, and publish dates in the many ways pages and feeds state them."""

from __future__ import annotations

import email.utils
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timezone
from urllib.parse import urlsplit

import dateparser

# Metadata field names, most specific first; front matter and JSON records share them.
TITLE_FIELDS = ("title", "headline")
OUTLET_FIELDS = ("outlet", "source", "site", "site_name", "publisher")
AUTHOR_FIELDS = ("author", "authors", "byline")
URL_FIELDS = ("url", "link", "canonical_url")
PUBLISHED_FIELDS = ("published", "published_at", "publish_date", "date")
TEXT_FIELDS = ("text", "body", "content", "article")
ID_FIELDS = ("doc_id", "id")
MAX_DATE_CHARS = 80  # longer "dates" are prose, and dateparser is slow on prose
SLUG_EXTENSION = re.compile(r"\.[A-Za-z]{2,5}$")  # index.html, story.cnn
SLUG_WORD = re.compile(r"[A-Za-z]{2,}")
SLUG_JOIN = re.compile(r"[A-Za-z0-9][-_][A-Za-z0-9]")  # words joined by hyphens or underscores


def parse_published(value: object) -> datetime | None:
    """Return the date a metadata value states (timezone kept if given), or None when it states none."""
    if isinstance(value, datetime):
        return _fixed_offset(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_DATE_CHARS:
        return None
    parsed = _parse_exact_date(value.strip()) or _parse_loose_date(value.strip())
    return _fixed_offset(parsed) if parsed else None


def pick(mapping: Mapping[str, object], names: tuple[str, ...]) -> object:
    """Return the value of the first of `names` that is present and not empty."""
    return next((mapping[name] for name in names if mapping.get(name) not in (None, "", [], {})), None)


def as_text(value: object) -> str | None:
    """Turn a metadata value (string, number, {"name": ...}, list of these) into one tidy line."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", " ".join(value.split())) or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Mapping):
        return as_text(value.get("name"))
    if isinstance(value, (list, tuple)):
        return ", ".join(part for part in map(as_text, value) if part) or None
    return None


def headline_from_url(url: str | None) -> str | None:
    """The words an article's address gives it, as written there ("squid-game-season-2"): the headline of
    an article that marks none. The path segment with the most words joined by hyphens or underscores."""
    try:
        path = urlsplit(url).path if url else ""
    except ValueError:
        return None
    segments = [SLUG_EXTENSION.sub("", segment) for segment in path.split("/")]
    slugs = [s for s in segments if len(SLUG_WORD.findall(s)) >= 2 and SLUG_JOIN.search(s)]
    return max(slugs, key=lambda s: len(SLUG_WORD.findall(s))) if slugs else None


def web_url(value: object) -> str | None:
    """Return a value as the article's link only if it is an http(s) URL (never javascript: and the like)."""
    url = as_text(value)
    return url if url and urlsplit(url).scheme.lower() in ("http", "https") else None


def outlet_from_url(url: str | None) -> str | None:
    """Return the host name a reader sees in a URL, without `www.`."""
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def _parse_exact_date(text: str) -> datetime | None:
    """Parse an ISO 8601, `2022/01/07` or RFC 2822 date."""
    slashed = lambda t: datetime.strptime(t, "%Y/%m/%d")  # the RealTimeQA corpus's `2022/01/07`
    for parse in (datetime.fromisoformat, slashed, email.utils.parsedate_to_datetime):
        try:
            return parse(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            continue
    return None


def _parse_loose_date(text: str) -> datetime | None:
    """Parse any other absolute date with a month and a year; relative ones ("yesterday") are not dates."""
    settings = {
        "PREFER_DAY_OF_MONTH": "first",
        "REQUIRE_PARTS": ["month", "year"],
        "PARSERS": ["custom-formats", "absolute-time"],
    }
    try:
        return dateparser.parse(text, languages=["en"], settings=settings)
    except (ValueError, TypeError, OverflowError):
        return None


def _fixed_offset(value: datetime) -> datetime:
    """Replace a datetime's timezone object by its plain UTC offset, so it prints as ISO 8601."""
    offset = value.utcoffset()
    return value if offset is None else value.replace(tzinfo=timezone(offset))
