"""Answers that read the corpus as stories: who else reported a cited story, how fresh an answer is,
timelines ("how did X unfold") and the brief of what is new since the last ingest."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag import discrepancies
from rag.answer import term_weights
from rag.config import RetrievalConfig, StoryConfig
from rag.dates import TimeFrame, time_frame
from rag.documents import Passage
from rag.events import AnswerEvent, Citation, DatedLine, Sources, TextDelta
from rag.prompts import NO_ANSWER
from rag.retrieve import Query, Retrieval, retrieve
from rag.sentences import stems
from rag.store import Report, Store

_TIMELINE = re.compile(
    r"^\s*(?:(?:give|show|make|write)\s+(?:me\s+)?)?(?:an?\s+|the\s+)?(?:timeline|chronology)\s+(?:of|for|on)\s+"
    r"(?P<a>.+?)[?.!]*$"
    r"|^\s*how\s+(?:did|has|have|is|are)\s+(?P<b>.+?)\s+(?:unfold(?:ed)?|develop(?:ed)?|evolve[sd]?|"
    r"play(?:ed)?\s+out|progress(?:ed)?|been\s+unfolding|unfolding)\b.*$"
    r"|^\s*(?P<c>.+?)\s*[,:-]?\s+(?:timeline|chronology)[?.!]*$",
    re.IGNORECASE,
)
TIMELINE_MODE = "timeline of the stored stories"
BRIEF_MODE = "brief of the stored stories"


def timeline_subject(question: str) -> str | None:
    """The subject of a timeline question ("timeline of X", "how did X unfold"), or None for another."""
    match = _TIMELINE.match(question.strip())
    if not match:
        return None
    subject = next(group for group in match.groups() if group)
    return re.sub(r"^(?:the\s+)?(?:events?\s+(?:of|around)\s+)", "", subject.strip(), flags=re.I) or None


def with_stories(
    events: Iterable[AnswerEvent], *, store: Store, frame: TimeFrame, as_of: date, config: StoryConfig
) -> Iterator[AnswerEvent]:
    """Pass an answer's events on, its sources given the other reports of their stories, the date of the
    newest source, and a plain warning when a question about now has only older sources."""
    for event in events:
        if isinstance(event, Sources):
            event = _with_discrepancies(
                _dated_sources(event, store=store, frame=frame, as_of=as_of, config=config),
                store=store,
                as_of=as_of,
                config=config,
            )
        yield event


def _with_discrepancies(sources: Sources, *, store: Store, as_of: date, config: StoryConfig) -> Sources:
    """Sources with the quantities they, or the other reports of their stories (up to
    `config.reports_compared` of each, newest first), give different values for; a report not cited that
    gives one is cited after the others, its sentence marked."""
    cited = {c.passage.article_id for c in sources.citations}
    others = [
        r.article_id
        for c in sources.citations
        for r in sorted(c.other_reports, key=lambda r: r.published_at or "", reverse=True)
        if r.article_id not in cited and (r.published_at or "")[:10] <= as_of.isoformat()
    ]
    extra = store.first_passages(list(dict.fromkeys(others))[: config.reports_compared]) if others else []
    numbered = [(c.number, c.passage) for c in sources.citations]
    numbered += [(len(numbered) + i, p) for i, p in enumerate(extra, start=1)]
    found = discrepancies.find(numbered)
    if not found:
        return sources
    marked: dict[int, set[tuple[int, int]]] = {}  # (the sentence giving each value, marked on its card)
    for v in (v for d in found for v in d.values):
        marked.setdefault(v.citation, set()).add(v.span)
    citations = [replace(c, highlights=tuple(sorted({*c.highlights, *marked.get(c.number, ())})))
                 for c in sources.citations]  # fmt: skip
    reports = {r.article_id: c.reports for c in sources.citations for r in c.reports}
    renumber = {c.number: c.number for c in sources.citations}
    for number, passage in numbered[len(sources.citations) :]:
        if number in marked:
            renumber[number] = len(citations) + 1
            citations.append(Citation(renumber[number], passage, tuple(sorted(marked[number])),
                                      reports.get(passage.article_id, ())))  # fmt: skip
    found = tuple(
        replace(d, values=tuple(replace(v, citation=renumber[v.citation]) for v in d.values)) for d in found
    )
    return replace(sources, citations=citations, discrepancies=found)


def _dated_sources(
    sources: Sources, *, store: Store, frame: TimeFrame, as_of: date, config: StoryConfig
) -> Sources:
    """Sources with their stories' other reports, the newest source's date and, for a question about
    now (`frame`: the period the question names), a warning when that date is old."""
    reports = store.story_reports(c.passage.story for c in sources.citations)
    updates = store.updates(c.passage.article_id for c in sources.citations) if sources.citations else {}
    citations = [
        replace(c, reports=tuple(reports.get(c.passage.story, ())), updates=updates.get(c.passage.article_id))
        for c in sources.citations
    ]
    days = [c.passage.published_date for c in citations if c.passage.published_date]
    newest = max(days, default=None)
    stale = None
    if newest and asks_about_now(frame, as_of):
        age = (as_of - newest).days
        if age > config.stale_after_days:
            stale = (
                f"The newest source here is from {format_day(newest)}, {age} days before "
                f"{format_day(as_of)}: there may be later news that these articles do not cover."
            )
    return replace(sources, citations=citations, newest=newest, stale=stale)


def since_updated(sources: Sources, store: Store) -> list[str]:
    """For an answer given earlier (a conversation's past turn): each cited article that changed since,
    whose newer version no longer holds a sentence the answer quoted, said as such."""
    now = store.updates(c.passage.article_id for c in sources.citations) if sources.citations else {}
    changed = [c for c in sources.citations if now.get(c.passage.article_id) != c.updates]
    texts = store.passage_texts([c.passage.article_id for c in changed]) if changed else {}
    notes = []
    for c in changed:
        current = " ".join(texts.get(c.passage.article_id, []))
        gone = [c.passage.text[a:b] for a, b in c.highlights if c.passage.text[a:b] not in current]
        if gone:
            quoted = gone[0] if len(gone[0]) <= 120 else gone[0][:117] + "…"
            notes.append(f"[{c.number}] was updated after this answer: “{quoted}” is no longer in it.")
    return notes


def asks_about_now(frame: TimeFrame, as_of: date) -> bool:
    """Whether a question asks about the present: the latest news, or a week or less up to now."""
    if frame.prefer_recent:
        return True
    return frame.start is not None and frame.end == as_of and (as_of - frame.start).days <= 7


def format_day(day: date) -> str:
    """A date as readers write it: 12 Nov 2026."""
    return f"{day.day} {day:%b %Y}"


def as_of_line(sources: Sources) -> str | None:
    """The stamp under an answer: the date of its newest source."""
    return f"As of {format_day(sources.newest)} (the newest source cited)" if sources.newest else None


def timeline(
    query: Query,
    subject: str,
    *,
    store: Store,
    embedder: BaseEmbedding,
    config: RetrievalConfig,
    stories: StoryConfig,
) -> tuple[Retrieval, Iterator[AnswerEvent]]:
    """The stories on a subject in date order: a dated line for each day a story was reported (the
    headline of that day's best article; copies and same-day coverage share the line), each cited.
    Passages that do not hold most of the subject's words are left out; the rest bring in their stories'
    other articles, found or not."""
    wide = replace(query, question=subject, k=3 * stories.timeline_lines)
    found = retrieve(wide, store=store, embedder=embedder, config=config.model_copy(update={"per_story": 1}))
    on_subject = _on_subject(subject, found.passages, stories.timeline_coverage)
    ranked = list(dict.fromkeys(p.story for p in on_subject))[: stories.timeline_lines]
    reports = store.story_reports(ranked)
    retrieved = {p.article_id: p for p in reversed(on_subject)}  # each article's best passage
    missing = [r.article_id for group in reports.values() for r in group if r.article_id not in retrieved]
    leads = {p.article_id: p for p in store.first_passages(missing)}
    days: dict[tuple[str, date | None], list[Passage]] = {}
    for story in ranked:
        group = reports.get(story) or [
            _report(retrieved[p.article_id]) for p in on_subject if p.story == story
        ]
        for report in group:
            passage = retrieved.get(report.article_id) or leads.get(report.article_id)
            if passage is not None and _inside(passage, query):
                days.setdefault((story, passage.published_date), []).append(passage)
    best = [max(group, key=lambda p: p.score) for group in days.values()]
    kept = sorted(best, key=lambda p: (p.score, -ranked.index(p.story)), reverse=True)[
        : stories.timeline_lines
    ]
    lines = sorted(kept, key=_date_order)
    asked = time_frame(query.question, as_of=query.as_of)  # the whole question's period, not the subject's
    return found, _dated_lines(lines, store=store, frame=asked, as_of=query.as_of, config=stories,
                               mode=TIMELINE_MODE)  # fmt: skip


def _inside(passage: Passage, query: Query) -> bool:
    """Whether a passage keeps to the query's filters: its outlets, its period, nothing after as_of."""
    day = passage.published_date
    if query.outlets and passage.outlet not in query.outlets:
        return False
    if day is None:
        return query.since is None and query.until is None
    return (query.since or date.min) <= day <= min(query.until or date.max, query.as_of)


def _report(passage: Passage) -> Report:
    return Report(passage.article_id, passage.story, passage.title, passage.outlet, passage.published_at,
                  passage.url, "")  # fmt: skip


def brief(
    store: Store, *, since: date | None = None, as_of: date | None = None, config: StoryConfig
) -> tuple[str, Iterator[AnswerEvent]]:
    """What is new: the stories with articles published since a date, or else stored by the last ingest,
    biggest first (most new articles, then most outlets), one cited line each (the newest headline).
    Returns what the brief covers, in words, and its events."""
    if since is not None:
        start = datetime.combine(since, time.min, tzinfo=UTC).timestamp()
        reports, covers = store.reports_since(published=start), f"published since {format_day(since)}"
    else:
        last = store.last_run()
        reports = store.reports_since(ingested=last) if last else []
        covers = f"stored by the last ingest ({last.replace('T', ' ')[:16]} UTC)" if last else "no ingest yet"
    by_story: dict[str, list[Report]] = {}
    for report in reports:
        by_story.setdefault(report.story_id, []).append(report)
    ranked = sorted(by_story.values(), key=_size, reverse=True)[: config.brief_stories]
    everything = store.story_reports(group[0].story_id for group in ranked)
    passages = {p.article_id: p for p in store.first_passages([r.article_id for g in ranked for r in g])}
    lines, notes = [], []
    for group in ranked:
        newest_first = sorted(group, key=lambda r: (r.published_at or "", r.article_id), reverse=True)
        own = next((passages[r.article_id] for r in newest_first if r.article_id in passages), None)
        if own is not None:
            lines.append(own)
            notes.append(_news(group, everything.get(group[0].story_id, group)))
    events = _dated_lines(lines, store=store, frame=TimeFrame(), as_of=as_of or date.today(), config=config,
                          mode=BRIEF_MODE, notes=notes)  # fmt: skip
    return covers, events


def _news(new: list[Report], story: list[Report]) -> str:
    """How a story grew: "new story, 2 articles from 2 outlets" or "updated: 1 new article, 5 in all"."""
    articles = f"{len(new)} {'article' if len(new) == 1 else 'articles'}"
    if len(story) > len(new):
        return f"updated: {len(new)} new {'article' if len(new) == 1 else 'articles'}, {len(story)} in all"
    outlets = len({r.outlet for r in new})
    return f"new story, {articles}" + (f" from {outlets} outlets" if outlets > 1 else "")


def _size(group: list[Report]) -> tuple[int, int, str]:
    outlets = {r.outlet for r in group}
    return (len(group), len(outlets), max(r.published_at or "" for r in group))


def _dated_lines(
    passages: Sequence[Passage],
    *,
    store: Store,
    frame: TimeFrame,
    as_of: date,
    config: StoryConfig,
    mode: str,
    notes: Sequence[str | None] = (),
) -> Iterator[AnswerEvent]:
    if not passages:
        yield TextDelta(NO_ANSWER)
        yield Sources([], 0, mode)
        return
    for number, passage in enumerate(passages, start=1):
        note = notes[number - 1] if notes else None
        yield DatedLine(passage.published_date, _line_text(passage), number, note)
    sources = Sources([Citation(n, p) for n, p in enumerate(passages, start=1)], 0, mode)
    yield _dated_sources(sources, store=store, frame=frame, as_of=as_of, config=config)


def _line_text(passage: Passage) -> str:
    """What a dated line says: the article's headline, else its passage's first sentence."""
    if passage.title and passage.title.strip():
        return " ".join(passage.title.split())
    return passage.text.strip().split("\n", 1)[0][:300]


def _on_subject(subject: str, passages: Sequence[Passage], share: float) -> list[Passage]:
    """The passages (headline included) holding `share` of the subject's words, weighed by rarity."""
    wanted = stems(subject)
    if not wanted:
        return list(passages)
    found = [stems(f"{p.title or ''} {p.text}") for p in passages]
    weight = term_weights(wanted, found)
    total = sum(weight.values())
    return [
        p
        for p, got in zip(passages, found, strict=True)
        if sum(weight[t] for t in wanted & got) >= share * total
    ]


def _date_order(passage: Passage) -> tuple[bool, date]:
    day = passage.published_date
    return (day is None, day or date.max - timedelta(days=1))
