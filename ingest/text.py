"""What every reader of articles shares: the failure it reports, reading a file's bytes safely, decoding
them, and tidying article text (Unicode, line ends, page furniture, a headline set apart)."""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings

MB = 1_000_000
SNIFF_BYTES = 8192  # a NUL byte this early means a binary file
MAX_HEADLINE_CHARS = 120
MAX_FOOTER_CHARS = 60

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


@dataclass(frozen=True)
class Failure:
    """An input that gave no article: where it came from and what the user can do about it."""

    source: str
    reason: str
    # Whether what is stored from it is kept by --prune: yes for a file that could not be read this time,
    # no for a link that leads out of the folder or whose target is gone.
    keeps_stored: bool = True


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


# Byte-order marks of the wide Unicode encodings; UTF-32's first (UTF-32-LE's starts as UTF-16-LE's does).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)  # fmt: skip


def bom_encoding(data: bytes) -> str | None:
    """The UTF-16 or UTF-32 encoding whose byte-order mark starts the data, or None."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


def wide_note(encoding: str) -> str:
    return f"{encoding.upper()} text (byte-order mark); decoded as {encoding.upper()}"


def decode_bytes(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Decode UTF-8 (with or without BOM), or UTF-16/UTF-32 that starts with its BOM (with a warning), else
    cp1252 then latin-1 with a warning."""
    if wide := bom_encoding(data):
        try:
            return data.decode(wide), (wide_note(wide),)
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


def read_file(path: Path, *, config: Settings | None) -> bytes | Failure:
    """Read a whole file, refusing unreadable, oversized (when config is given), empty and binary files."""
    try:
        too_big = size_problem(path.stat().st_size, "file", config=config) if config else None
        if too_big:
            return Failure(str(path), too_big)
        data = path.read_bytes()
    except OSError as exc:
        return Failure(str(path), os_reason(path, exc), keeps_stored=not _dangling(path))
    problem = content_problem(data)
    return Failure(str(path), problem) if problem else data


def _is_footer(line: str) -> bool:
    """Tell whether a line is a short web-page footer such as "Leave a comment"."""
    line = line.strip()
    return len(line) <= MAX_FOOTER_CHARS and FOOTER_LINE.fullmatch(line) is not None


def size_problem(size: int, what: str, *, config: Settings) -> str | None:
    """Say why a file or record is over the size limit, or None when it is not."""
    if size <= config.max_file_mb * MB:
        return None
    megabytes = size / MB
    shown = f"{megabytes:.1f}" if megabytes >= 0.1 else f"{megabytes:.2g}"
    return f"the {what} is {shown} MB, over the {config.max_file_mb:g} MB limit (NEWSDESK_MAX_FILE_MB)"


def content_problem(data: bytes) -> str | None:
    """Say why the start of a file holds no text (empty, or binary), or None when it may."""
    if not data.strip():
        return "the file is empty"
    if b"\0" in data[:SNIFF_BYTES] and not bom_encoding(data):  # UTF-16 and UTF-32 text hold NUL bytes
        return "the file looks binary (NUL bytes near the start); save articles as UTF-8 text"
    return None


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def os_reason(path: Path, exc: OSError) -> str:
    """Explain why a file could not be read, naming a broken symlink as such."""
    reason = f"cannot read the file ({exc.strerror or exc})"
    if path.is_symlink() and not path.exists():
        reason += f"; it is a symbolic link to {os.readlink(path)}, which does not exist"
    return reason
