"""Read article files (text, Markdown, HTML, JSON, JSON Lines) into Articles with their own metadata."""

from __future__ import annotations

from collections.abc import Iterator

import frontmatter
import yaml

from ingest.fields import (
    AUTHOR_FIELDS,
    OUTLET_FIELDS,
    PUBLISHED_FIELDS,
    TITLE_FIELDS,
    URL_FIELDS,
    as_text,
    headline_from_url,
    parse_published,
    pick,
    web_url,
)
from ingest.html import decode_html, html_article
from ingest.json_records import read_json, read_json_lines
from ingest.sources import SUPPORTED_SUFFIXES, SourceFile, suffix_of
from ingest.text import Failure, decode_bytes, normalize_text, read_file, split_headline
from rag.config import Settings
from rag.documents import Article

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSON_LINES_SUFFIXES = (".jsonl", ".jsonl.gz")


def read_articles(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of one file, and a Failure for each part that could not be read."""
    if source.refused:
        yield Failure(str(source.path), source.refused, keeps_stored=False)
        return
    suffix = suffix_of(source.path)
    if suffix in TEXT_SUFFIXES or suffix in HTML_SUFFIXES:
        yield _read_single(source, config=config)
    elif suffix == ".json":
        yield from read_json(source, config=config)
    elif suffix in JSON_LINES_SUFFIXES:
        yield from read_json_lines(source, config=config)
    else:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        yield Failure(str(source.path), f"not a supported file type; use one of {supported}")


def _read_single(source: SourceFile, *, config: Settings) -> Article | Failure:
    """Read a file holding one article."""
    data = read_file(source.path, config=config)
    if isinstance(data, Failure):
        return data
    if suffix_of(source.path) in HTML_SUFFIXES:
        html, warnings = decode_html(data)
        return html_article(html, where=str(source.path), fallback_id=source.relative_id, warnings=warnings)
    text, warnings = decode_bytes(data)
    return _text_article(text, source=source, warnings=warnings)


def _text_article(text: str, *, source: SourceFile, warnings: tuple[str, ...]) -> Article | Failure:
    """Build an article from plain text or Markdown with optional YAML front matter."""
    try:
        post = frontmatter.loads(normalize_text(text))
    except (yaml.YAMLError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Failure(str(source.path), f"the front matter is not valid YAML ({reason}); fix or remove it")
    meta = post.metadata
    title = as_text(pick(meta, TITLE_FIELDS))
    body = normalize_text(post.content)
    if title is None:
        title, body = split_headline(body)
    if not body:
        return Failure(str(source.path), "the file has no article text")
    url = web_url(pick(meta, URL_FIELDS))
    return Article(
        article_id=url or source.relative_id,
        text=body,
        source=str(source.path),
        title=title or headline_from_url(url),
        outlet=as_text(pick(meta, OUTLET_FIELDS)),
        author=as_text(pick(meta, AUTHOR_FIELDS)),
        url=url,
        published_at=parse_published(pick(meta, PUBLISHED_FIELDS)),
        warnings=warnings,
    )
