"""Collections of articles: a JSON file (an object, a list, or {"articles": [...]}) and JSON Lines, gzipped or
not, read record by record so one broken record never stops the rest."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ingest.fields import (
    AUTHOR_FIELDS,
    ID_FIELDS,
    OUTLET_FIELDS,
    PUBLISHED_FIELDS,
    TEXT_FIELDS,
    TITLE_FIELDS,
    URL_FIELDS,
    as_text,
    headline_from_url,
    outlet_from_url,
    parse_published,
    pick,
    web_url,
)
from ingest.sources import SourceFile
from ingest.text import (
    SNIFF_BYTES,
    Failure,
    bom_encoding,
    content_problem,
    decode_bytes,
    normalize_text,
    os_reason,
    read_file,
    size_problem,
    wide_note,
)
from rag.config import Settings
from rag.documents import Article


def read_json(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of a JSON object, a list of objects, or {"articles": [...]}."""
    path = source.path
    data = read_file(path, config=None)  # the size limit applies to each record
    if isinstance(data, Failure):
        yield data
        return
    text, warnings = decode_bytes(data)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Failure(str(path), f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
        return
    if isinstance(parsed, dict) and not isinstance(parsed.get("articles"), list):
        where, fallback_id = str(path), source.relative_id
        yield _json_record(parsed, source=where, fallback_id=fallback_id, config=config, warnings=warnings)
        return
    records = parsed["articles"] if isinstance(parsed, dict) else parsed
    if not isinstance(records, list):
        yield Failure(str(path), 'expected a JSON object, a list of objects, or {"articles": [...]}')
        return
    for number, record in enumerate(records, start=1):
        where, fallback_id = f"{path}#{number}", f"{source.relative_id}#{number}"
        yield _json_record(record, source=where, fallback_id=fallback_id, config=config, warnings=warnings)


def _json_record(
    record: object, *, source: str, fallback_id: str, config: Settings, warnings: tuple[str, ...]
) -> Article | Failure:
    """Build the article of one record of a JSON file, refusing an oversized record."""
    size = len(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    too_big = size_problem(size, "record", config=config)
    if too_big:
        return Failure(source, too_big)
    return _record_article(record, source=source, fallback_id=fallback_id, warnings=warnings)


def read_json_lines(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of a JSON Lines file (gzipped or not), one record per line, streamed."""
    path = source.path
    try:
        with _open_binary(path) as stream:
            start = stream.read(SNIFF_BYTES)
            problem = content_problem(start)
            if problem:
                yield Failure(str(path), problem)
                return
            stream.seek(0)
            wide = bom_encoding(start)
            # UTF-16 and UTF-32 lines are read as text and passed on as UTF-8, with a warning.
            lines = (
                (line.encode("utf-8") for line in io.TextIOWrapper(stream, encoding=wide, newline="\n"))  # type: ignore[type-var]
                if wide
                else stream
            )
            note = (wide_note(wide),) if wide else ()
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    read = _line_article(line, number, source=source, config=config)
                    yield replace(read, warnings=read.warnings + note) if isinstance(read, Article) else read
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        yield Failure(str(path), _stream_reason(path, exc))


def _open_binary(path: Path) -> io.BufferedIOBase:
    """Open a file for reading bytes, decompressing `.gz`."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def _line_article(line: bytes, number: int, *, source: SourceFile, config: Settings) -> Article | Failure:
    """Build the article of one JSON Lines record."""
    where = f"{source.path}#{number}"
    too_big = size_problem(len(line), "record", config=config)
    if too_big:
        return Failure(where, too_big)
    text, warnings = decode_bytes(line)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Failure(where, f"line {number} is not valid JSON ({exc.msg}, column {exc.colno})")
    fallback_id = f"{source.relative_id}#{number}"
    return _record_article(record, source=where, fallback_id=fallback_id, warnings=warnings)


def _record_article(
    record: object, *, source: str, fallback_id: str, warnings: tuple[str, ...]
) -> Article | Failure:
    """Build an article from one JSON record, or say why it is not one."""
    if not isinstance(record, dict):
        return Failure(source, f"the record is a JSON {type(record).__name__}, not an object")
    text = pick(record, TEXT_FIELDS)
    body = normalize_text(text) if isinstance(text, str) else ""
    url = web_url(pick(record, URL_FIELDS))
    title = as_text(pick(record, TITLE_FIELDS)) or headline_from_url(url)
    if not body and isinstance(text, str) and text.strip() and title:
        # A page captured without its story (a video page, say) still reports its headline.
        body = title
        warnings = (*warnings, "the text was only web-page boilerplate; stored the headline alone")
    if not body:
        return Failure(source, f"record has no text (looked for {', '.join(TEXT_FIELDS)})")
    return Article(
        article_id=as_text(pick(record, ID_FIELDS)) or url or fallback_id,
        text=body,
        source=source,
        title=title,
        outlet=as_text(pick(record, OUTLET_FIELDS)) or outlet_from_url(url),
        author=as_text(pick(record, AUTHOR_FIELDS)),
        url=url,
        published_at=parse_published(pick(record, PUBLISHED_FIELDS)),
        warnings=warnings,
    )


def _stream_reason(path: Path, exc: Exception) -> str:
    """Explain why a JSON Lines file stopped, saying whether it is the gzip data that is broken."""
    if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
        return os_reason(path, exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"the text is not valid {exc.encoding.upper()} ({exc.reason}); records before it were read"
    return f"the gzip data is corrupt ({exc}); records before the damage were read"
