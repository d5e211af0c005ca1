"""What an answer is made of, as both answerers yield it and every reader of answers takes it: pieces of
text, revised text, dated lines, and the sources cited, each sentence checked against them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rag.discrepancies import Discrepancy
from rag.documents import Passage, outlet_label
from rag.store import Report, Updates


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence of an answer, the citations it carries, and whether they support it."""

    text: str  # without its markers
    citations: tuple[int, ...]
    supported: bool
    reason: str | None = None  # why not, in words a reader can check
    overlap: float = 1.0  # share of its words found in the passages it cites


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True)
class Revised:
    """The answer rewritten after its check found unsupported sentences: it replaces the text streamed
    before it, and the Sources that follow are its own."""

    text: str
    draft: str
    unsupported: int  # sentences of the draft that were not supported


@dataclass(frozen=True)
class DatedLine:
    """One line of a timeline or a brief: a date, what happened, and the citation that backs it."""

    day: date | None
    text: str  # article text (a headline or a sentence): shown as data, never as markup
    number: int  # the citation
    note: str | None = None  # e.g. "new story, 2 outlets" in a brief


@dataclass(frozen=True)
class Citation:
    """A source cited as `[number]`, with the spans of its passage the answer drew on."""

    number: int
    passage: Passage
    highlights: tuple[tuple[int, int], ...] = ()  # character spans within passage.text
    reports: tuple[Report, ...] = ()  # every article of the passage's story, itself included, oldest first
    updates: Updates | None = None  # when its article changed under its id since first stored

    @property
    def updated_line(self) -> str | None:
        """What its card says of an article that changed: "updated 2 times, last 2026-11-21"."""
        if self.updates is None:
            return None
        times = "1 time" if self.updates.times == 1 else f"{self.updates.times} times"
        return f"updated {times}, last {self.updates.last[:10]}"

    @property
    def outlets(self) -> list[str]:
        """The outlets that reported the passage's story (its own outlet when it stands alone)."""
        found = [outlet_label(r.outlet) for r in self.reports] or [self.passage.outlet_name]
        return list(dict.fromkeys(found))

    @property
    def other_reports(self) -> list[Report]:
        """The story's articles other than the one cited."""
        return [r for r in self.reports if r.article_id != self.passage.article_id]


@dataclass(frozen=True)
class Sources:
    """The end of an answer: the cited sources in citation order."""

    citations: list[Citation]
    removed_markers: int
    mode: str
    newest: date | None = None  # publish date of the newest source cited: the answer is "as of" it
    stale: str | None = None  # said when a question about now has only older sources
    checks: tuple[SentenceCheck, ...] = ()  # each sentence of the answer checked against its citations
    discrepancies: tuple[Discrepancy, ...] = ()  # quantities the sources give different values for

    @property
    def unsupported(self) -> list[SentenceCheck]:
        """The sentences its citations do not support (or that cite nothing)."""
        return [check for check in self.checks if not check.supported]


AnswerEvent = TextDelta | DatedLine | Revised | Sources
