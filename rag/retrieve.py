"""Find the passages that bear on a question: vector and keyword search, fused, dated and trimmed."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.config import RetrievalConfig
from rag.dates import TimeFrame, time_frame
from rag.documents import Passage
from rag.store import UNDATED, PassageFilter, Store, span

ANSWER_PASSAGES = 6  # passages an answer is written from unless the query asks for more
Lists = Literal["none", "both", "any"]  # which searches of a period can still change what is kept
WINDOW_SPREAD = 0.8  # periods whose best weights are this close are searched together (see _windows)

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_OPINION_SECTION = re.compile(r"/(opinions?|commentary|editorials?|op-?eds?)/", re.IGNORECASE)
_OPINION_HEADLINE = re.compile(
    r"\s*opinion\s*(:|\||[-–—]\s)", re.IGNORECASE
)  # "Opinion: ...", "OPINION | ..."
_ASKS_OPINION = re.compile(
    r"\b(opinions?|op-?eds?|editorials?|columns?|columnists?|commentary|commentators?|argue[sd]?|think)\b",
    re.IGNORECASE,
)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    said says say tell told know happened happen happening news latest recent recently week month year today
    yesterday ago since last past this next also many much one two there's what's who's""".split()
)


@dataclass(frozen=True)
class Query:
    """A question and what narrows its search."""

    question: str
    as_of: date = field(default_factory=date.today)
    outlets: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    k: int = ANSWER_PASSAGES


@dataclass(frozen=True)
class Retrieval:
    """The passages found for a query, best first, and the period the question spoke of."""

    passages: list[Passage]
    frame: TimeFrame


def content_terms(text: str) -> list[str]:
    """Return the words of a text that carry its meaning (lower case, no stopwords, no duplicates)."""
    words = (w.strip("'’-").lower() for w in _WORD.findall(text))
    return list(dict.fromkeys(w for w in words if w and w not in STOPWORDS and len(w) > 1))


def retrieve(query: Query, *, store: Store, embedder: BaseEmbedding, config: RetrievalConfig) -> Retrieval:
    """Search passages by combining vector search with keyword search, period by period, then weigh dates
    and trim.

    The store's periods (months, and the undated) are searched in the order of the most their articles can
    weigh for this question: the period it names first, then the newest. The search stops when the next
    period's best weight, given to a passage first in every list, would still not lift it above the k-th
    passage kept: so a question costs what the periods it reaches hold, not what the store holds. Before
    that, a period whose passages could be kept only if both the vector and the keyword search find them
    has its keyword scores given to the passages its vector search found, instead of ranking every
    passage that matches a word of the question.
    """
    frame = time_frame(query.question, as_of=query.as_of)
    where = PassageFilter(
        outlets=query.outlets,
        since=_day_start(query.since) if query.since else None,
        until=_day_end(query.until) if query.until else None,
        as_of=_day_end(query.as_of),
    )
    terms, n = content_terms(query.question), config.candidates
    opinions_asked = bool(_ASKS_OPINION.search(query.question))
    found: tuple[list[Passage], list[Passage], list[Passage]] = ([], [], [])
    kept: list[Passage] = []
    vector: list[float] | None = None
    reach = None  # passages whose vectors may still be searched (None: the first window, searched whole)
    # The keyword search runs in SQLite while the question is embedded and Chroma searched: both release
    # the interpreter, so on two cores the two searches cost about the slower one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = store.periods()
        for bound, periods in _windows(held, frame, query, config):
            lists = _lists_needed(kept[-1].score if len(kept) >= query.k else None, bound, config)
            reached = periods if reach is None else _within(periods, held, reach)
            reach = config.vector_passages if reach is None else reach - sum(held[p] for p in reached)
            if lists == "none" or (lists == "both" and not reached):
                break  # (past the vectors' reach, a passage found by words alone could not be kept)
            keywords = None
            if lists == "any":
                keywords = pool.submit(
                    store.keyword_search, terms, k=n, where=where, config=config, periods=periods
                )
            if vector is None:
                vector = embedder.get_query_embedding(_without_period(query.question, frame))
            nearest = store.vector_search(vector, k=n, where=where, periods=reached) if reached else []
            found[0].extend(nearest)
            if config.headline_weight:
                found[2].extend(store.headline_search(terms, k=n, where=where, periods=periods))
            if keywords is None:
                keywords = pool.submit(
                    store.keyword_scores, terms, nearest, where=where, config=config, periods=periods
                )
            found[1].extend(keywords.result())
            fused = _fuse(_best(found[0], n), _best(found[1], n), _best_articles(found[2], n), config=config)
            weighted = sorted(
                (_weigh(p, frame, query.as_of, config=config, opinions_asked=opinions_asked) for p in fused),
                key=lambda passage: passage.score,
                reverse=True,
            )
            kept = _trim(weighted, k=query.k, config=config)
    return Retrieval(kept, frame)


def _within(periods: list[str], held: dict[str, int], reach: int) -> list[str]:
    """The periods of a window, the heaviest first, whose passages' vectors fit in `reach`."""
    within: list[str] = []
    for period in periods:
        reach -= held[period]
        if reach < 0:
            break
        within.append(period)
    return within


def _lists_needed(kth: float | None, bound: float, config: RetrievalConfig) -> Lists:
    """Which searches of a period can still change what is kept, given the score of the k-th passage kept
    (None: fewer are kept) and the most a passage of the period can weigh for its date: "none"; "both" the
    vector and the keyword search (a passage missing from either would fuse to no more than the k-th); or
    "any" (every search in full)."""
    if kth is None:
        return "any"
    first = bound / (config.rrf_k + 1)  # a passage's fused score for being first in a list of weight 1
    if first * (2.0 + config.headline_weight) < kth:
        return "none"
    return "both" if first * (1.0 + config.headline_weight) < kth else "any"


def _windows(
    held: dict[str, int], frame: TimeFrame, query: Query, config: RetrievalConfig
) -> list[tuple[float, list[str]]]:
    """The periods a question may search, in groups, each with the most a passage of it can weigh for the
    question, highest first: a group takes periods until it holds `window_passages`, and any that weigh
    within WINDOW_SPREAD of its first. A question that names a period searches the groups that hold its
    months and none after them: the months around it that fill its group, not the store's whole past
    (so what a question about last week reads, and holds in memory, does not grow with the archive)."""
    last = min(query.as_of, query.until) if query.until else query.as_of
    bounds: list[tuple[float, str]] = []
    for period in held:
        days = span(period)
        if days is None:
            if query.since is None and query.until is None:
                bounds.append((_date_weight(None, frame, query.as_of, config=config), period))
            continue
        first, end = days[0], min(days[1], last)
        if end < first or (query.since and days[1] < query.since):
            continue
        bounds.append((_best_weight(first, end, frame, query.as_of, config), period))
    bounds.sort(key=lambda item: (item[0], item[1] != UNDATED, item[1]), reverse=True)
    windows: list[tuple[float, list[str]]] = []
    size = 0
    for bound, period in bounds:
        if windows and (size < config.window_passages or bound >= WINDOW_SPREAD * windows[-1][0]):
            windows[-1][1].append(period)
            size += held[period]
        else:
            windows.append((bound, [period]))
            size = held[period]
    if frame.is_range:  # no further than the last window that holds a month of the period named
        named = [n for n, (_, periods) in enumerate(windows) if any(_overlaps(p, frame) for p in periods)]
        return windows[: max(named, default=0) + 1]
    return windows


def _overlaps(period: str, frame: TimeFrame) -> bool:
    """Whether a month period has days in the question's period."""
    days = span(period)
    if days is None:
        return False
    return (frame.start is None or days[1] >= frame.start) and (frame.end is None or days[0] <= frame.end)


def _best_weight(first: date, last: date, frame: TimeFrame, as_of: date, config: RetrievalConfig) -> float:
    """The most the date can weigh for an article published between two days (a day more on each side, for
    publish times whose day differs by time zone)."""
    days = {first, last, frame.end or last, frame.start or first, as_of}
    edges = {min(max(day, first), last) + timedelta(days=shift) for day in days for shift in (-1, 0, 1)}
    return max(_date_weight(day, frame, as_of, config=config) for day in edges)


def _best(hits: list[Passage], n: int) -> list[Passage]:
    """The n best of the hits of several periods' searches, as one search of them all would rank them."""
    return sorted(hits, key=lambda hit: hit.score, reverse=True)[:n]


def _best_articles(hits: list[Passage], n: int) -> list[Passage]:
    """The passages of the n/4 articles whose headline matched best, as the headline search ranks them."""
    ranked = sorted(hits, key=lambda hit: hit.score, reverse=True)  # stable: an article's passages in order
    best = set(list(dict.fromkeys(hit.article_id for hit in ranked))[: max(1, n // 4)])
    return [hit for hit in ranked if hit.article_id in best][:n]


def _without_period(question: str, frame: TimeFrame) -> str:
    """The question without the words that name its period ("this week", "recently"): the dates weigh
    that, and articles seldom say it, so in the question's vector it only pulls towards other text."""
    if not frame.phrase:
        return question
    without = re.sub(re.escape(frame.phrase), " ", question, flags=re.IGNORECASE)
    rest = re.sub(r"\s+([?.,!])", r"\1", " ".join(without.split())).lstrip(",. ")
    return rest if content_terms(rest) else question


def _fuse(
    vector_hits: Sequence[Passage],
    keyword_hits: Sequence[Passage],
    headline_hits: Sequence[Passage] = (),
    *,
    config: RetrievalConfig,
) -> list[Passage]:
    """Weighted reciprocal rank fusion of the result lists."""
    scores: dict[str, float] = {}
    hits: dict[str, Passage] = {}
    similarity = {hit.chunk_id: hit.score for hit in vector_hits}
    lists = ((vector_hits, 1.0), (keyword_hits, 1.0), (headline_hits, config.headline_weight))
    for results, weight in lists:
        for rank, hit in enumerate(results):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (config.rrf_k + rank + 1)
            hits.setdefault(hit.chunk_id, hit)
    return [replace(hits[cid], score=score, similarity=similarity.get(cid)) for cid, score in scores.items()]


def _weigh(
    passage: Passage, frame: TimeFrame, as_of: date, *, config: RetrievalConfig, opinions_asked: bool = False
) -> Passage:
    """Favour newer reporting (more so for "the latest"), passages from the period the question names,
    passages of articles about one story over digests of many, and reporting over opinion pieces."""
    c = config
    factor = _date_weight(passage.published_date, frame, as_of, config=config)
    if passage.focus is not None and passage.focus < c.focus_high:
        share = max(passage.focus - c.focus_low, 0.0) / (c.focus_high - c.focus_low)
        factor *= c.multi_story_weight + (1 - c.multi_story_weight) * share
    if not opinions_asked and is_opinion(passage.url, passage.title):
        factor *= c.opinion_weight
    return replace(passage, score=passage.score * factor)


def _date_weight(published: date | None, frame: TimeFrame, as_of: date, *, config: RetrievalConfig) -> float:
    """How much an article's publish date weighs for a question: at most 1."""
    # News questions ask for the news as of the end of their period (as_of when they name none): the
    # newer weighs more, the old still counts, an undated article counts as `undated_age` days old.
    c = config
    end = frame.end if frame.end is not None else as_of
    age = (end - published).days if published else c.undated_age
    half_life = c.latest_half_life if frame.prefer_recent else c.recent_half_life
    decay = math.exp(-max(age, 0) / half_life * math.log(2))
    factor = c.recent_floor + (1 - c.recent_floor) * decay
    if frame.is_range:
        factor *= (
            c.unknown_date
            if published is None
            else c.in_period
            if frame.contains(published)
            else c.out_of_period
        )
    return factor


def is_opinion(url: str | None, title: str | None) -> bool:
    """Whether an article is an opinion piece: filed under an opinion section or headlined as one."""
    return bool((url and _OPINION_SECTION.search(url)) or (title and _OPINION_HEADLINE.match(title)))


def _trim(passages: Sequence[Passage], *, k: int, config: RetrievalConfig) -> list[Passage]:
    """Keep the best k: at most `per_article` per article, one article of a set of near copies, no
    near-identical passages, and at most `per_story` of one story while other stories wait."""
    kept: list[Passage] = []
    waiting: list[Passage] = []  # passages of stories that have their share, for slots left over
    per_article: dict[str, int] = {}
    per_story: dict[str, int] = {}
    copy_holder: dict[str, str] = {}  # original text -> the article whose copy of it is kept
    seen: list[frozenset[str]] = []
    for passage in passages:
        if per_article.get(passage.article_id, 0) >= config.per_article:
            continue
        if copy_holder.setdefault(passage.text_of, passage.article_id) != passage.article_id:
            continue  # a near copy of an article already kept: the same report from another outlet
        words = frozenset(content_terms(passage.text))
        if any(_jaccard(words, other) >= config.near_duplicate for other in seen):
            continue  # the same text in other words' company, e.g. a paragraph quoted by another article
        seen.append(words)
        per_article[passage.article_id] = per_article.get(passage.article_id, 0) + 1
        if config.per_story and per_story.get(passage.story, 0) >= config.per_story:
            waiting.append(passage)
            continue
        per_story[passage.story] = per_story.get(passage.story, 0) + 1
        kept.append(passage)
        if len(kept) == k:
            return kept
    return kept + waiting[: k - len(kept)]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _day_start(day: date) -> float:
    return datetime.combine(day, time.min, tzinfo=UTC).timestamp()


def _day_end(day: date) -> float:
    return datetime.combine(day, time.max, tzinfo=UTC).timestamp()
