"""Where the reports differ: the same quantity (deaths, injuries, people missing, arrested or evacuated)
given different values by the sources of an answer, or by the other reports of a story it cites.

Only counts named by a word of their kind are compared ("12 dead", "killing 12", "the death toll rose to
15"), and only between reports of one story (or sentences that say the same thing): a wrong "reports differ"
misleads more than a missed one. A report that gives two values of one kind ("3 killed here, 10 there") is
left out of that kind; counts of a part ("22 Americans killed", "71 in the last 24 hours") are compared only
with counts of the same part, and tolls of the dead, injured or arrested only where they grow with time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from rag.documents import Passage, is_digest
from rag.places import places_named
from rag.sentences import sentences, stems

_BURNING = (
    r"burned|burnt|scorched|charred|blackened|consumed|torched|grown to|grew to|spread to|spread across"
)
# Each kind: the words that name it after a number, the word a value is said with, the quantity's name.
_KINDS = {
    "dead": (r"dead|deaths?|killed|died|fatalities|lives(?: lost)?", "dead", "deaths"),
    "injured": (r"injured|wounded|hurt|injuries", "injured", "injuries"),
    "missing": (r"missing|unaccounted for", "missing", "people missing"),
    "arrested": (r"arrested|arrests|detained", "arrested", "arrests"),
    "evacuated": (r"evacuated|evacuations", "evacuated", "evacuations"),
    "burned": (rf"acres (?:{_BURNING})", "acres burned", "acres burned"),  # a fire's size
}
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}  # fmt: skip
_QUALIFIER = r"(?P<q>at least |more than |over |nearly |almost |about |around |some |up to )?"
_UNIT = (
    r"%|percent|years?|days?|weeks?|months?|hours?|minutes?|miles?|kilomet|km|feet|foot|met(?:er|re)s?|times"
    r"|[ap]\.?m\b|million|billion"
)
_N = r"(?P<n>\d{1,3}(?:,\d{3})+|\d+|" + "|".join(_WORDS) + rf")\b(?![,.]?\d)(?![\d,.]*[\s-]*(?:{_UNIT}))"
_ANYONE = r"people|persons|others|adults|residents|victims"
# A part of those counted: "22 Americans killed" and "700 Israelis killed" are not counts of one quantity,
# nor one of them and the toll of all.
_PART = (
    r"children|civilians|migrants|soldiers|workers|passengers|students|officers|men|women|Palestinians|Israelis"
    r"|Ukrainians|Americans"
)
_PEOPLE = rf"{_ANYONE}|{_PART}"
_BETWEEN = r"were|was|have|has|had|been|are|reportedly|confirmed|now|of them|of those|of the"
_WHO = rf"(?:(?:{_PEOPLE}|{_BETWEEN}) ){{0,3}}"
# After "killing 12": people, or the end of the clause ("killing 12 in Texas"), not "killing 12 cattle".
_WHOM = (
    rf"(?=\s+(?:{_PEOPLE}|of (?:them|those)|in|on|at|and|across|during|after|when|while|since|including"
    r"|as|so far|this|last)\b|\s*[,.;:)—–-]|$)"
)
_FIRES = r"fire|blaze|wildfire|brush fire"
_PATTERNS = [
    (kind, re.compile(rf"(?<![$\w.,-]){_QUALIFIER}{_N} {_WHO}(?:{words})\b", re.IGNORECASE))
    for kind, (words, _, _) in _KINDS.items()
] + [
    ("dead", re.compile(rf"\b(?:killing|killed|claimed the lives of) {_QUALIFIER}{_N}\b{_WHOM}", re.I)),
    ("injured", re.compile(rf"\b(?:injuring|injured|wounding|wounded) {_QUALIFIER}{_N}\b{_WHOM}", re.I)),
    ("arrested", re.compile(rf"\b(?:arrested|detained) {_QUALIFIER}{_N}\b{_WHOM}", re.IGNORECASE)),
    ("dead", re.compile(rf"\bdeath toll\b[^.;:]{{0,80}}?\b(?:to|at|of|reached|hit|is|was) {_QUALIFIER}{_N}\b",
                        re.IGNORECASE)),
    # A fire's size: "has burned more than 10,000 acres", "the 4,000-acre fire".
    ("burned", re.compile(rf"\b(?:{_BURNING})(?: through| across| over)? {_QUALIFIER}{_N} acres\b", re.I)),
    ("burned", re.compile(rf"(?<![$\w.,-]){_QUALIFIER}{_N}(?:-acre| acres?) (?:{_FIRES})\b", re.I)),
]  # fmt: skip
# A fire's name ("the Palisades Fire", "California's Oak Fire"): which fire a size is of.
_FIRE = re.compile(r"\b(?:[Tt]he |[A-Z][\w-]*['’]s )?((?:[A-Z][\w'’-]+ ){1,3})(?:Fire|Complex)\b")
# Where a count is of: the places its sentence names ("in Erie County, New York", "across the Caribbean")
# and words that widen it; two counts of different places are different quantities.
_WHERE = re.compile(
    r"\b(?:in|near|across|throughout|at)\s+(?:the\s+|a\s+|an\s+)?((?:[A-Z][\w.-]*(?:['’]s)?\s?)+)"
)
_WIDE = re.compile(
    r"\b(?:nationwide|statewide|worldwide|countrywide|across the (?:country|state|region|world))\b", re.I
)
_PART_SAID = re.compile(rf"\b({_PART})\b", re.IGNORECASE)
# ("the American death toll")
_PART_BEFORE = re.compile(r"\b(American|Israeli|Palestinian|Ukrainian|Russian)\s+$")
_SHARE = "a share"  # a count of a share of the toll, like no other count
# After a count: another kind with it ("killed or kidnapped": not one kind's count) or a share of the time
# or the place ("in the last 24 hours alone", "in Florida alone").
_SHARE_SAID = re.compile(
    r"\s+or\s+\w|[^.;]{0,40}?\b(?:in|over|during)\s+the\s+(?:last|past|previous)\s+(?:\d+\s+|few\s+)?"
    r"(?:hours?|days?|day|night|weekend)\b|[^.;]{0,40}?\balone\b",
    re.IGNORECASE,
)
_GROWING = {"dead", "injured", "arrested", "burned"}  # kinds whose count only grows as an event is reported
# Before a count: it is an earlier figure the report recalls ("up from 12", "rose from 12 to 15").
_RECALLED = re.compile(r"(?:\b(?:up|down)\s+from\b[^.;]{0,50}|\bpreviously\b[^.;]{0,40}|\bfrom\s+)$", re.I)
_AGE = re.compile(r"(?:\bage of|\baged?|\bages|\bunder|\byounger than|\bolder than) $", re.I)
_LEAD = 6  # sentences of an article's start: where a report gives its own count of the story's event
_APART = 7  # days between two reports whose counts are compared at most
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_KIND_WORDS = stems(" ".join(words.replace("|", " ").replace("?", "") for words, _, _ in _KINDS.values()))
_SAME_WORDING = 0.3  # share of content words two sentences of different stories must share


@dataclass(frozen=True)
class Mention:
    """A count of one kind in a passage: its value, as written, and the sentence saying it."""

    kind: str
    value: int
    written: str  # "at least 12 dead"
    span: tuple[int, int]  # the sentence, within the passage text
    where: frozenset[str] = frozenset()  # the words of the places its sentence names
    wide: frozenset[str] = frozenset()  # words that widen it to a whole country ("nationwide")
    sentence: int = 0  # which sentence of the text, from 0
    part: str = ""  # the part of those counted it is of ("americans"), or "" for all


@dataclass(frozen=True)
class ReportedValue:
    """One report's value of a quantity, as a discrepancy line names it."""

    written: str
    value: int
    outlet: str
    day: date | None
    citation: int
    span: tuple[int, int] = (0, 0)  # the sentence giving it, within the cited passage's text
    earlier: bool = False  # a later report of the story gives another value
    newer: bool = False  # the newest report of those that differ


@dataclass(frozen=True)
class Discrepancy:
    """One quantity the reports give different values for, the newest report first."""

    quantity: str  # "deaths"
    values: tuple[ReportedValue, ...]

    @property
    def line(self) -> str:
        """The plain line an answer says it in: "Reports differ: 15 dead (Coastal Post, 21 Nov 2026, the
        newer) [2] and 12 dead (Harbor Times, 20 Nov 2026, earlier) [1]." """
        said = []
        for v in self.values:
            when = [f"{v.day.day} {v.day:%b %Y}"] if v.day else []
            label = ["the newer"] if v.newer else ["earlier"] if v.earlier else []
            said.append(f"{v.written} ({', '.join([v.outlet, *when, *label])}) [{v.citation}]")
        return (
            "Reports differ: "
            + (", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0])
            + "."
        )


def mentions(text: str) -> list[Mention]:
    """The counts of each kind a text gives, one per value and sentence."""
    found: dict[tuple[str, int, tuple[int, int]], Mention] = {}
    for n, (start, end) in enumerate(sentences(text)):
        sentence = text[start:end]
        where, wide = _where(sentence), frozenset(w.lower() for w in _WIDE.findall(sentence))
        for kind, pattern in _PATTERNS:
            for match in pattern.finditer(sentence):
                value = _number(match.group("n"))
                # (one death is most often a person's own story, not a toll; a year is not a count)
                if value is None or value < 2 or (1900 <= value <= 2100 and "," not in match.group("n")):
                    continue
                before = sentence[: match.start("n")]
                if _AGE.search(before[-20:]) or _RECALLED.search(before[-60:]):  # ("under the age of 5")
                    continue
                written = f"{(match.group('q') or '').lower()}{value:,} {_KINDS[kind][1]}"
                found.setdefault(
                    (kind, value, (start, end)),
                    Mention(
                        kind,
                        value,
                        written,
                        (start, end),
                        where,
                        wide,
                        n,
                        _part(sentence, match, kind),
                    ),
                )
    return list(found.values())


def find(sources: Sequence[tuple[int, Passage]]) -> tuple[Discrepancy, ...]:
    """The quantities that sources (citation number, passage) give different values for: between reports
    of one story, or sentences sharing most of their words; a report with two values of a kind is left out
    of it. The newest report leads; the values a later report revises are marked earlier."""
    by_report: dict[tuple[str, str], list[tuple[int, Passage, Mention]]] = {}
    for number, passage in sources:
        if is_digest(passage.title) or passage.start != 0:  # (a digest's counts are of many stories)
            continue
        for mention in mentions(passage.text):
            # A report's own count is in its lead; further down come sub-counts ("two died in one
            # county") and counts of other events.
            if mention.sentence >= _LEAD or _of_the_past(passage, mention):
                continue
            if mention.kind == "burned" and not mention.part and passage.title:
                mention = replace(mention, part=_fire(passage.title))  # (the fire its headline names)
            by_report.setdefault((mention.kind, passage.article_id), []).append((number, passage, mention))
    clear: dict[str, list[tuple[int, Passage, Mention]]] = {}
    for (kind, _), found in by_report.items():
        if len({m.value for _, _, m in found}) == 1:  # one value: this report's figure for the kind
            clear.setdefault(kind, []).append(found[0])
    results = []
    for kind, found in clear.items():  # (of one kind, the event most reports give a value for)
        differing = [
            group
            for group in _same_event(found)
            if len({m.value for _, _, m in group}) > 1 and (kind not in _GROWING or _grows(group))
        ]
        if differing:
            results.append(Discrepancy(_KINDS[kind][2], _ordered(max(differing, key=len))))
    return tuple(results)


def _part(sentence: str, match: re.Match[str], kind: str) -> str:
    """What part of the whole a count is of: people of one kind ("22 Americans killed", "the American death
    toll"), one fire's size ("the Palisades Fire"), a share of its time or place ("71 in the last 24
    hours", "66 in Florida alone", `_SHARE`), or "" for the whole."""
    if _SHARE_SAID.match(sentence, match.end()):
        return _SHARE
    if kind == "burned":
        return _fire(sentence)
    said = _PART_SAID.match(sentence, match.end("n") + 1) or _PART_SAID.match(sentence, match.end() + 1)
    if said:
        return said.group(1).lower()
    before = _PART_BEFORE.search(sentence[: match.start()])
    return before.group(1).lower() + "s" if before else ""


def _fire(text: str) -> str:
    """The fire a text names ("the Palisades Fire": "palisades"), "" for none, `_SHARE` for several."""
    names = {" ".join(name.split()).lower() for name in _FIRE.findall(text)}
    return _SHARE if len(names) > 1 else next(iter(names), "")


def _where(sentence: str) -> frozenset[str]:
    named = {w.removesuffix("'s").removesuffix("’s") for run in _WHERE.findall(sentence) for w in run.split()}
    for place in places_named(sentence):
        named.update(place.split())
    return frozenset(named)


def _of_the_past(passage: Passage, mention: Mention) -> bool:
    """Whether a count's sentence names an earlier year than its report's ("the Blizzard of 1977 killed
    29"): a count of another event."""
    day = passage.published_date
    sentence = passage.text[mention.span[0] : mention.span[1]]
    return day is not None and any(int(year) < day.year for year in _YEAR.findall(sentence))


def _grows(group: list[tuple[int, Passage, Mention]]) -> bool:
    """Whether no report gives fewer than one of an earlier day: a toll of the dead, the injured or the
    arrested only grows, so a later, smaller count is of something else (a part, another event)."""
    dated = [(p.published_date, m.value) for _, p, m in group if p.published_date]
    return not any(day_b > day_a and b < a for day_a, a in dated for day_b, b in dated)


def _same_event(found: list[tuple[int, Passage, Mention]]) -> list[list[tuple[int, Passage, Mention]]]:
    """Split reports of one kind into those about one event (one story, or much the same wording), each
    alike with every other of its group."""
    groups: list[list[tuple[int, Passage, Mention]]] = []
    for item in found:
        for group in groups:
            if all(_alike(item, other) for other in group):
                group.append(item)
                break
        else:
            groups.append([item])
    return groups


def _alike(a: tuple[int, Passage, Mention], b: tuple[int, Passage, Mention]) -> bool:
    where_a, where_b = a[2].where, b[2].where  # (a count said of no place is of the story's own)
    if (where_a and where_b and where_a != where_b) or a[2].wide != b[2].wide:
        return False
    if a[2].part != b[2].part or a[2].part == _SHARE:
        return False
    days = a[1].published_date, b[1].published_date
    if days[0] and days[1] and abs((days[0] - days[1]).days) > _APART:
        return False
    if a[1].story == b[1].story:
        return True
    words_a, words_b = (_content(p.text[m.span[0] : m.span[1]]) for _, p, m in (a, b))
    return bool(words_a and words_b) and len(words_a & words_b) >= _SAME_WORDING * len(words_a | words_b)


def _content(sentence: str) -> set[str]:
    return {w for w in stems(sentence) if not w.isdigit() and w not in _KIND_WORDS and w not in _WORDS}


def _ordered(group: list[tuple[int, Passage, Mention]]) -> tuple[ReportedValue, ...]:
    """Newest report first; each value a later report of another value revises is marked earlier."""
    newest_first = sorted(
        group, key=lambda item: (item[1].published_date or date.min, -item[0]), reverse=True
    )
    values = []
    for number, passage, mention in newest_first:
        day = passage.published_date
        revised = any(
            m.value != mention.value and p.published_date and day and p.published_date > day
            for _, p, m in group
        )
        values.append(
            ReportedValue(
                mention.written, mention.value, passage.outlet_name, day, number, mention.span, bool(revised)
            )
        )
    if values and values[0].day and all(v.earlier for v in values[1:] if v.value != values[0].value):
        values[0] = replace(values[0], newer=True)
    return tuple(_one_per_value(values))


def _one_per_value(values: list[ReportedValue]) -> list[ReportedValue]:
    """The newest report of each value (the reports that agree are one value)."""
    seen: set[int] = set()
    kept = []
    for v in values:
        if v.value not in seen:
            seen.add(v.value)
            kept.append(v)
    return kept


def _number(text: str) -> int | None:
    word = _WORDS.get(text.lower())
    if word is not None:
        return word
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return None
