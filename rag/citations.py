"""Citation markers: renumber `[n]` by first use, drop those that point at no passage, even mid-stream."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

MARKER = re.compile(r" ?\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A tail that may still become a marker once the next piece of the stream arrives.
_OPEN_TAIL = re.compile(r" ?\[[\d,\s]{0,15}$| $")


@dataclass
class CitationTracker:
    """Rewrite an answer's markers as it streams: `[n]` for passage n becomes `[k]`, k its citation order.

    Markers for passages that do not exist are removed and counted.
    """

    passage_count: int
    cited: list[int] = field(default_factory=list)  # passage numbers (1-based), in citation order
    removed: int = 0
    _pending: str = ""

    def feed(self, delta: str) -> str:
        """Take the next piece of the answer; return the text that is safe to show now."""
        text = self._pending + delta
        tail = _OPEN_TAIL.search(text)
        cut = tail.start() if tail else len(text)
        self._pending = text[cut:]
        return MARKER.sub(self._rewrite, text[:cut])

    def finish(self) -> str:
        """Return what is still held back at the end of the stream."""
        rest, self._pending = self._pending, ""
        return MARKER.sub(self._rewrite, rest)

    def cite(self, passage_number: int) -> int:
        """Return the citation number for a passage, giving it the next number on first use."""
        if passage_number not in self.cited:
            self.cited.append(passage_number)
        return self.cited.index(passage_number) + 1

    def _rewrite(self, match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match[1])]
        valid = [n for n in numbers if 1 <= n <= self.passage_count]
        self.removed += len(numbers) - len(valid)
        if not valid:
            return ""
        space = " " if match[0].startswith(" ") else ""
        return space + "".join(f"[{self.cite(n)}]" for n in dict.fromkeys(valid))


def highlight_html(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Return article text as inert HTML: everything escaped, the cited spans wrapped in <mark>."""
    pieces, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor:
            continue
        pieces += [html.escape(text[cursor:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        cursor = end
    pieces.append(html.escape(text[cursor:]))
    return "".join(pieces).replace("\n", "<br>")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")
# Markdown renderers turn bare addresses into links even when escaped; an invisible word joiner breaks them.
_AUTOLINK = re.compile(r"(https?|ftp|www|mailto|@)", re.IGNORECASE)


def escape_markdown(text: str) -> str:
    """Return text that Markdown shows as written: no links, images, HTML or formatting come alive."""
    return _AUTOLINK.sub("\\1\u2060", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def safe_url(url: str | None) -> str | None:
    """Return the article's own URL when it is an http(s) link, else None (no javascript: and the like)."""
    return url if url and re.match(r"https?://[^\s<>\"']+$", url, re.IGNORECASE) else None
