"""Read article files (text, Markdown, HTML, JSON, JSON Lines) into Articles with their own metadata."""

from __future__ import annotations

import codecs
import email.utils
import gzip
import io
import json
import os
import re
import unicodedata
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import dateparser
import frontmatter
import trafilatura
import yaml
from trafilatura.settings import Document

from ingest.sources import SUPPORTED_SUFFIXES, SourceFile, suffix_of
from rag.config import Settings
from rag.documents import Article

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSON_LINES_SUFFIXES = (".jsonl", ".jsonl.gz")

# Metadata field names, most specific first; front matter and JSON records share them.
TITLE_FIELDS = ("title", "headline")
OUTLET_FIELDS = ("outlet", "source", "site", "site_name", "publisher")
AUTHOR_FIELDS = ("author", "authors", "byline")
URL_FIELDS = ("url", "link", "canonical_url")
PUBLISHED_FIELDS = ("published", "published_at", "publish_date", "date")
TEXT_FIELDS = ("text", "body", "content", "article")
ID_FIELDS = ("doc_id", "id")

MB = 1_000_000
SNIFF_BYTES = 8192  # a NUL byte this early means a binary file
MAX_HEADLINE_CHARS = 120
MAX_FOOTER_CHARS = 60
MAX_DATE_CHARS = 80  # longer "dates" are prose, and dateparser is slow on prose
MIN_HTML_WORDS = 10  # fewer words of main text: an error page, a cookie wall or broken markup
# A first line ending so is a sentence or a dateline ("LONDON —"); an ellipsis may end a headline.
NOT_HEADLINE_ENDINGS = (".", ",", ";", ":", "—", "–", "-")
BYLINE = re.compile(r"by\s", re.IGNORECASE)

# Short lines a web page puts after an article; dropped from the end of the text, repeatedly.
FOOTER_PATTERNS = (
    r"leave a (comment|reply)",
    r"share (this|the)( article| story| post| page)?",
    r"share (on|via|to) (facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|e-?mail)",
    r"sign up (for|to) .*newsletters?",
    r"subscribe\b.*",
    r"click here\b.*",
    r"read more\b.*",
    r"(view |show )?comments? ?\(\d+\)",
    r"\d+ comments?",
    r"related (articles|stories|posts|content|coverage)",
)
FOOTER_LINE = re.compile(r"\W*(" + "|".join(FOOTER_PATTERNS) + r")\W*", re.IGNORECASE)
AD_LINE = re.compile(r"\W*advertisement\W*", re.IGNORECASE)  # dropped anywhere in the text
# One outlet's page furniture: the ad-feedback form of CNN's video player, captured with its pages' text
# (a video page's whole text, at times). Dropped anywhere in the text.
CNN_VIDEO_AD_FORM = re.compile(
    r"(?:\d+\.\s*)?How relevant is this ad to you\?(?:\s*Video player was slow to load content[^\n]*)?",
    re.IGNORECASE,
)
BLANK_RUN = re.compile(r"\n{3,}")
SLUG_EXTENSION = re.compile(r"\.[A-Za-z]{2,5}$")  # index.html, story.cnn
SLUG_WORD = re.compile(r"[A-Za-z]{2,}")
SLUG_JOIN = re.compile(r"[A-Za-z0-9][-_][A-Za-z0-9]")  # words joined by hyphens or underscores
# Only to decode a page's bytes; its metadata is trafilatura's to find.
HTML_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """An input that gave no article: where it came from and what the user can do about it."""

    source: str
    reason: str
    # Whether what is stored from it is kept by --prune: yes for a file that could not be read this time,
    # no for a link that leads out of the folder or whose target is gone.
    keeps_stored: bool = True


def read_articles(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of one file, and a Failure for each part that could not be read."""
    if source.refused:
        yield Failure(str(source.path), source.refused, keeps_stored=False)
        return
    suffix = suffix_of(source.path)
    if suffix in TEXT_SUFFIXES or suffix in HTML_SUFFIXES:
        yield _read_single(source, config=config)
    elif suffix == ".json":
        yield from _read_json(source, config=config)
    elif suffix in JSON_LINES_SUFFIXES:
        yield from _read_json_lines(source, config=config)
    else:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        yield Failure(str(source.path), f"not a supported file type; use one of {supported}")


def normalize_text(text: str) -> str:
    """Normalize Unicode, line ends and blank lines, and drop web-page boilerplate lines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = CNN_VIDEO_AD_FORM.sub("", text)
    lines = [line.rstrip() for line in text.split("\n") if not AD_LINE.fullmatch(line.strip())]
    while lines and (not lines[-1] or _is_footer(lines[-1])):
        lines.pop()
    return BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def split_headline(text: str) -> tuple[str | None, str]:
    """Split off a marked headline: a `# Heading` first line, or a short line set apart from the body."""
    first, _, rest = text.partition("\n")
    rest = rest.strip()
    if not rest:
        return None, text
    if first.startswith("# "):
        return first[2:].strip() or None, rest
    ends_sentence = first.endswith(NOT_HEADLINE_ENDINGS) and not first.endswith(("...", "…"))
    if len(first) > MAX_HEADLINE_CHARS or ends_sentence or BYLINE.match(first):
        return None, text
    set_apart = text.startswith("\n\n", len(first))
    much_shorter = len(first) * 3 <= len(rest.partition("\n")[0])
    return (first.strip(), rest) if set_apart or much_shorter else (None, text)


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


# Byte-order marks of the wide Unicode encodings; UTF-32's first (UTF-32-LE's starts as UTF-16-LE's does).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)  # fmt: skip


def bom_encoding(data: bytes) -> str | None:
    """The UTF-16 or UTF-32 encoding whose byte-order mark starts the data, or None."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


def _wide_note(encoding: str) -> str:
    return f"{encoding.upper()} text (byte-order mark); decoded as {encoding.upper()}"


def decode_bytes(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Decode UTF-8 (with or without BOM), or UTF-16/UTF-32 that starts with its BOM (with a warning), else
    cp1252 then latin-1 with a warning."""
    if wide := bom_encoding(data):
        try:
            return data.decode(wide), (_wide_note(wide),)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), ("not valid UTF-8; decoded as cp1252",)
    except UnicodeDecodeError:
        return data.decode("latin-1"), ("not valid UTF-8; decoded as latin-1",)


# --- single-article files: text, Markdown, HTML ---------------------------------------------------------


def _read_single(source: SourceFile, *, config: Settings) -> Article | Failure:
    """Read a file holding one article."""
    data = _read_file(source.path, config=config)
    if isinstance(data, Failure):
        return data
    if suffix_of(source.path) in HTML_SUFFIXES:
        html, warnings = decode_html(data)
        return html_article(html, where=str(source.path), fallback_id=source.relative_id, warnings=warnings)
    text, warnings = decode_bytes(data)
    return _text_article(text, source=source, warnings=warnings)


def _read_file(path: Path, *, config: Settings | None) -> bytes | Failure:
    """Read a whole file, refusing unreadable, oversized (when config is given), empty and binary files."""
    try:
        too_big = _size_problem(path.stat().st_size, "file", config=config) if config else None
        if too_big:
            return Failure(str(path), too_big)
        data = path.read_bytes()
    except OSError as exc:
        return Failure(str(path), _os_reason(path, exc), keeps_stored=not _dangling(path))
    problem = _content_problem(data)
    return Failure(str(path), problem) if problem else data


def _text_article(text: str, *, source: SourceFile, warnings: tuple[str, ...]) -> Article | Failure:
    """Build an article from plain text or Markdown with optional YAML front matter."""
    try:
        post = frontmatter.loads(normalize_text(text))
    except (yaml.YAMLError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Failure(str(source.path), f"the front matter is not valid YAML ({reason}); fix or remove it")
    meta = post.metadata
    title = as_text(_pick(meta, TITLE_FIELDS))
    body = normalize_text(post.content)
    if title is None:
        title, body = split_headline(body)
    if not body:
        return Failure(str(source.path), "the file has no article text")
    url = web_url(_pick(meta, URL_FIELDS))
    return Article(
        article_id=url or source.relative_id,
        text=body,
        source=str(source.path),
        title=title or headline_from_url(url),
        outlet=as_text(_pick(meta, OUTLET_FIELDS)),
        author=as_text(_pick(meta, AUTHOR_FIELDS)),
        url=url,
        published_at=parse_published(_pick(meta, PUBLISHED_FIELDS)),
        warnings=warnings,
    )


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


# --- collections: JSON and JSON Lines --------------------------------------------------------------------


def _read_json(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of a JSON object, a list of objects, or {"articles": [...]}."""
    path = source.path
    data = _read_file(path, config=None)  # the size limit applies to each record
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
    too_big = _size_problem(size, "record", config=config)
    if too_big:
        return Failure(source, too_big)
    return _record_article(record, source=source, fallback_id=fallback_id, warnings=warnings)


def _read_json_lines(source: SourceFile, *, config: Settings) -> Iterator[Article | Failure]:
    """Yield the articles of a JSON Lines file (gzipped or not), one record per line, streamed."""
    path = source.path
    try:
        with _open_binary(path) as stream:
            start = stream.read(SNIFF_BYTES)
            problem = _content_problem(start)
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
            note = (_wide_note(wide),) if wide else ()
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
    too_big = _size_problem(len(line), "record", config=config)
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
    text = _pick(record, TEXT_FIELDS)
    body = normalize_text(text) if isinstance(text, str) else ""
    url = web_url(_pick(record, URL_FIELDS))
    title = as_text(_pick(record, TITLE_FIELDS)) or headline_from_url(url)
    if not body and isinstance(text, str) and text.strip() and title:
        # A page captured without its story (a video page, say) still reports its headline.
        body = title
        warnings = (*warnings, "the text was only web-page boilerplate; stored the headline alone")
    if not body:
        return Failure(source, f"record has no text (looked for {', '.join(TEXT_FIELDS)})")
    return Article(
        article_id=as_text(_pick(record, ID_FIELDS)) or url or fallback_id,
        text=body,
        source=source,
        title=title,
        outlet=as_text(_pick(record, OUTLET_FIELDS)) or outlet_from_url(url),
        author=as_text(_pick(record, AUTHOR_FIELDS)),
        url=url,
        published_at=parse_published(_pick(record, PUBLISHED_FIELDS)),
        warnings=warnings,
    )


# --- small helpers ---------------------------------------------------------------------------------------


def _is_footer(line: str) -> bool:
    """Tell whether a line is a short web-page footer such as "Leave a comment"."""
    line = line.strip()
    return len(line) <= MAX_FOOTER_CHARS and FOOTER_LINE.fullmatch(line) is not None


def _pick(mapping: Mapping[str, object], names: tuple[str, ...]) -> object:
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


def _size_problem(size: int, what: str, *, config: Settings) -> str | None:
    """Say why a file or record is over the size limit, or None when it is not."""
    if size <= config.max_file_mb * MB:
        return None
    megabytes = size / MB
    shown = f"{megabytes:.1f}" if megabytes >= 0.1 else f"{megabytes:.2g}"
    return f"the {what} is {shown} MB, over the {config.max_file_mb:g} MB limit (NEWSDESK_MAX_FILE_MB)"


def _content_problem(data: bytes) -> str | None:
    """Say why the start of a file holds no text (empty, or binary), or None when it may."""
    if not data.strip():
        return "the file is empty"
    if b"\0" in data[:SNIFF_BYTES] and not bom_encoding(data):  # UTF-16 and UTF-32 text hold NUL bytes
        return "the file looks binary (NUL bytes near the start); save articles as UTF-8 text"
    return None


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def _os_reason(path: Path, exc: OSError) -> str:
    """Explain why a file could not be read, naming a broken symlink as such."""
    reason = f"cannot read the file ({exc.strerror or exc})"
    if path.is_symlink() and not path.exists():
        reason += f"; it is a symbolic link to {os.readlink(path)}, which does not exist"
    return reason


def _stream_reason(path: Path, exc: Exception) -> str:
    """Explain why a JSON Lines file stopped, saying whether it is the gzip data that is broken."""
    if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
        return _os_reason(path, exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"the text is not valid {exc.encoding.upper()} ({exc.reason}); records before it were read"
    return f"the gzip data is corrupt ({exc}); records before the damage were read"
