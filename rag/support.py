"""Check each sentence of an answer against the passages it cites: its numbers, dates and names must be in
a cited passage, and most of its words too. A sentence without a citation, or one its citations do not
support, is marked with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from rag.documents import Passage
from rag.events import AnswerEvent, Citation, Revised, SentenceCheck, Sources, TextDelta
from rag.sentences import closest_spans, sentences, stems

# One or more citation markers in a row: " [1]", "[1][3]", " [2, 4]".
MARKERS = re.compile(r"(?:\s?\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+")
_MONTHS = "january february march april may june july august september october november december".split()
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"sept": "september"}
_MONTH_WORD = re.compile(
    r"(?<![\w-])(" + "|".join([*_MONTHS, *_MONTH_ABBR]) + r")(?![\w-])\.?", re.IGNORECASE
)
_DATE = re.compile(r"\b(" + "|".join(_MONTHS) + r") (\d{1,2})(?:st|nd|rd|th)?\b")
_NUMBER_WORDS = dict(
    zip(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split(),
        range(21),
        strict=True,
    )
)
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9,
          "b": 1e9, "trillion": 1e12, "tn": 1e12}  # fmt: skip
_NUMBER = re.compile(
    r"(?<![\w.])(?:[$£€]\s?)?(\d[\d,]*(?:\.\d+)?|(?:" + "|".join(_NUMBER_WORDS) + r")\b)"
    r"(?:\s*(%|percent\b|per cent\b))?"
    r"(?:\s*(" + "|".join(sorted(_SCALE, key=len, reverse=True)) + r")\b)?",
    re.IGNORECASE,
)
# A capitalised word inside a sentence (not its first word): a name of a person, place or thing.
_NAME = re.compile(r"(?<=[\s(\"“‘'-])([A-Z][A-Za-z’'.-]*[A-Za-z])")
_COMMON_CAPITALS = frozenset(
    "I A The This That These Those It He She They We You Mr Mrs Ms Dr But And Or So Yet On In At As".split()
)


class Reviser(Protocol):
    """An answerer that can rewrite an answer's unsupported sentences (a chat model)."""

    def revise(
        self, question: str, citations: Sequence[Citation], draft: str, problems: Sequence[tuple[str, str]]
    ) -> tuple[str, list[Citation], int]: ...


def with_checks(
    events: Iterable[AnswerEvent],
    *,
    min_overlap: float,
    question: str = "",
    reviser: Reviser | None = None,
    passages: Sequence[Passage] = (),
) -> Iterator[AnswerEvent]:
    """Pass an answer's events on, its sources carrying the check of every sentence of its text. With a
    `reviser`, an answer with unsupported sentences is rewritten once, from the passages it cited (from
    all the `passages` found when it cited none), and the rewrite checked again."""
    written: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            written.append(event.text)
        elif isinstance(event, Sources) and not is_refusal(draft := "".join(written)):
            # a chat model's sentences without markers, given the passage that says them
            attached = attach_citations(draft, event.citations, passages, min_overlap=min_overlap)
            if attached is not None:
                draft, citations, uncited = attached
                yield Revised(draft, "".join(written), uncited)
                event = replace(event, citations=citations)
            checks = check_answer(draft, event.citations, min_overlap=min_overlap)
            problems = [(c.text, c.reason or "") for c in checks if not c.supported]
            sources = event.citations or [Citation(n, p) for n, p in enumerate(passages, start=1)]
            if reviser is not None and problems and sources:
                text, citations, removed = reviser.revise(question, sources, draft, problems)
                if stems(text):  # an empty reply keeps the draft, marked
                    yield Revised(text, draft, len(problems))
                    checks = check_answer(text, citations, min_overlap=min_overlap)
                    event = replace(
                        event, citations=citations, removed_markers=event.removed_markers + removed
                    )
            event = replace(event, checks=tuple(checks))
        yield event


def attach_citations(
    answer: str, citations: Sequence[Citation], passages: Sequence[Passage], *, min_overlap: float
) -> tuple[str, list[Citation], int] | None:
    """Give each sentence of an answer that carries no citation marker the first retrieved passage that
    supports it (the numbers, dates and names it states, at least one, there, and most of its words), as
    a marker after it: a small chat model often writes the right facts without markers. Returns the answer
    with the markers, its citations (those given before, then the passages newly cited) and how many
    sentences had none; None when no sentence lacks a marker or none can be given one."""
    uncited = [text for text, numbers in claims(answer) if not numbers and stems(text)]
    if not uncited or not passages:
        return None
    cited = list(citations)
    number_of = {c.passage.chunk_id: c.number for c in cited}
    evidence = [evidence_of(p) for p in passages]
    placed: list[tuple[int, int]] = []  # (where a marker goes, its number)
    cursor = 0
    for text in uncited:
        at = answer.find(text, cursor)
        if at < 0:
            continue
        cursor = at + len(text)
        stated = facts(text)
        if not stated:  # words alone are too weak a tie: a sentence naming nothing is left uncited
            continue
        source = next((n for n, e in enumerate(evidence) if _supports(text, stated, e, min_overlap)), None)
        if source is None:
            continue
        passage = passages[source]
        if passage.chunk_id not in number_of:
            number_of[passage.chunk_id] = len(cited) + 1
            cited.append(Citation(len(cited) + 1, passage, closest_spans(text, passage.text)))
        placed.append((cursor, number_of[passage.chunk_id]))
    if not placed:
        return None
    for end, number in reversed(placed):
        answer = f"{answer[:end]} [{number}]{answer[end:]}"
    return answer, cited, len(uncited)


def is_refusal(answer: str) -> bool:
    """Whether an answer declines: it says the sources don't say (then there is nothing to check)."""
    return re.sub(r"[^a-z ]", "", answer.lower().replace("’", "'")).strip().startswith("the sources dont say")


def claims(answer: str) -> list[tuple[str, tuple[int, ...]]]:
    """Split an answer into sentences with the citation numbers each carries (a marker before or just
    after a sentence's full stop belongs to that sentence)."""
    found: list[tuple[str, tuple[int, ...]]] = []
    position = 0
    for run in MARKERS.finditer(answer):
        if run.start() < position:
            continue
        numbers = tuple(dict.fromkeys(int(n) for n in re.findall(r"\d+", run[0])))
        piece, end = answer[position : run.start()], run.end()
        if end < len(answer) and answer[end] in ".!?":
            piece, end = piece + answer[end], end + 1
        found += _sentences_of(piece, numbers)
        position = end
    found += _sentences_of(answer[position:], ())
    return found


def _sentences_of(text: str, numbers: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    spans = sentences(text)
    if not spans:
        return []
    parts = [text[a:b] for a, b in spans]
    if not numbers:
        return [(part, ()) for part in parts]
    if len(parts) > 1 and len(stems(parts[-1])) == 0:  # a stray full stop after the markers
        parts = parts[:-1]
    return [(part, ()) for part in parts[:-1]] + [(parts[-1], numbers)]


def check_answer(answer: str, citations: Sequence[Citation], *, min_overlap: float) -> list[SentenceCheck]:
    """Check every sentence of an answer against the passages its markers point at."""
    sources = {c.number: evidence_of(c.passage) for c in citations}
    return [
        check_sentence(text, numbers, sources, min_overlap=min_overlap)
        for text, numbers in claims(answer)
        if stems(text)  # a sentence of markers or punctuation alone says nothing
    ]


def evidence_of(passage: Passage) -> Evidence:
    """What a cited passage states: its headline and text, and the dateline its source card shows (so a
    sentence saying when its article was published is checked against that)."""
    return Evidence.of(f"{passage.title or ''}\n{passage.text}\n{passage.dateline}")


def check_sentence(
    text: str, numbers: tuple[int, ...], sources: dict[int, Evidence], *, min_overlap: float
) -> SentenceCheck:
    """Check one sentence against the passages of its citation numbers (`sources`: number -> passage)."""
    if not numbers:
        return SentenceCheck(text, numbers, False, "no citation", 0.0)
    cited = [sources[n] for n in numbers if n in sources]
    if not cited:
        return SentenceCheck(text, numbers, False, "cites no source that was retrieved", 0.0)
    evidence = Evidence.joined(cited)
    marks = "".join(f"[{n}]" for n in numbers)
    stated = facts(text)
    missing = [fact for fact in stated if not holds(fact, evidence)]
    overlap = word_overlap(text, evidence)
    others = [
        n
        for n, source in sources.items()
        if n not in numbers and _supports(text, stated, source, min_overlap)
    ]
    hint = f"; {''.join(f'[{n}]' for n in others)} says it" if others else ""
    if missing:
        said = ", ".join(f"“{fact.shown}”" for fact in missing)
        return SentenceCheck(text, numbers, False, f"{said} is not in {marks}{hint}", overlap)
    if overlap < min_overlap:
        reason = f"only {overlap:.0%} of its words are in {marks}{hint}"
        return SentenceCheck(text, numbers, False, reason, overlap)
    return SentenceCheck(text, numbers, True, None, overlap)


def _supports(text: str, stated: list[Fact], source: Evidence, min_overlap: float) -> bool:
    return all(holds(fact, source) for fact in stated) and word_overlap(text, source) >= min_overlap


@dataclass(frozen=True)
class Fact:
    """A number, date or name a sentence states, with the forms a passage may give it in."""

    shown: str
    kind: str  # "number", "date" or "name"
    key: str


def facts(text: str) -> list[Fact]:
    """The numbers, dates and names a sentence states."""
    plain = _normalise(text)
    found = [Fact(m[0].capitalize(), "date", f"{m[1]} {int(m[2])}") for m in _DATE.finditer(plain)]
    dated = {m.span() for m in _DATE.finditer(plain)}
    for match in _NUMBER.finditer(plain):
        if any(a <= match.start() < b for a, b in dated):
            continue
        value = _value(match)
        if value is not None and match[1][0].isdigit():  # "one of them" states no number
            found.append(Fact(match[0].strip(), "number", value))
    months = set(_MONTHS) | set(_MONTH_ABBR)
    opening = len(text) - len(text.lstrip(" \"“‘'([-"))  # where its first word starts, after any quote
    for match in _NAME.finditer(text):  # its first word is capitalised anyway: names inside it only
        word = re.sub(r"[’']s$", "", match[1]).rstrip(".")
        if match.start() == opening or word in _COMMON_CAPITALS or word.lower() in months or len(word) < 2:
            continue
        found.append(Fact(word, "name", _normalise(word)))
    return list({(f.kind, f.key): f for f in found}.values())


@dataclass(frozen=True)
class Evidence:
    """What a passage states, read once for all the sentences checked against it: its normalised text,
    content words (stemmed), dates and numbers (in canonical form)."""

    plain: str
    words: frozenset[str]
    dates: frozenset[str]
    numbers: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Evidence:
        plain = _normalise(text)
        return cls(
            plain,
            frozenset(stems(text)),
            frozenset(f"{m[1]} {int(m[2])}" for m in _DATE.finditer(plain)),
            frozenset(value for m in _NUMBER.finditer(plain) if (value := _value(m)) is not None),
        )

    @classmethod
    def joined(cls, parts: Sequence[Evidence]) -> Evidence:
        """What several passages state together."""
        return cls(
            "\n".join(p.plain for p in parts),
            frozenset().union(*(p.words for p in parts)),
            frozenset().union(*(p.dates for p in parts)),
            frozenset().union(*(p.numbers for p in parts)),
        )


def holds(fact: Fact, evidence: Evidence) -> bool:
    """Whether a passage states the fact (numbers in any form: 5 million = 5,000,000 = five million)."""
    if fact.kind == "date":
        return fact.key in evidence.dates
    if fact.kind == "number":
        return fact.key in evidence.numbers
    return re.search(rf"(?<![a-z]){re.escape(fact.key)}(?![a-z])", evidence.plain) is not None


def word_overlap(sentence: str, evidence: Evidence) -> float:
    """Share of the sentence's content words (stemmed) that the evidence holds."""
    wanted = stems(sentence)
    return len(wanted & evidence.words) / len(wanted) if wanted else 1.0


def _normalise(text: str) -> str:
    """Lower case, month abbreviations spelled out, curly quotes straightened."""
    text = text.replace("’", "'").lower()
    return _MONTH_WORD.sub(lambda m: _MONTH_ABBR.get(m[1].lower(), m[1].lower()), text)


def _value(match: re.Match[str]) -> str | None:
    """A number's value as a canonical string ("5000000", "12.5%"), or None for a bare small count word."""
    raw, percent, scale = match[1].lower(), match[2], (match[3] or "").lower()
    if raw in _NUMBER_WORDS:
        number = float(_NUMBER_WORDS[raw])
    else:
        try:
            number = float(raw.replace(",", ""))
        except ValueError:
            return None
    number *= _SCALE.get(scale, 1.0)
    return f"{number:.6g}" + ("%" if percent else "") if number < 1e6 else f"{number:.0f}"
