"""Group articles into stories as they arrive: near copies (syndicated or re-posted text) by MinHash of their
word shingles, coverage of one event by the likeness of whole articles (the mean of their passages' vectors)
or of their headlines and leads, within a week; digests ("5 things to know for …") by copies only.

Each new or changed article joins the story of the stored article it is most like, or starts one; stored
articles keep their story, so ids survive reruns. The grouping reads only what ingest already has: the
article's passages and their vectors, so it costs no embedding.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from rag.config import StoryConfig
from rag.documents import StoryLink, is_digest
from rag.store import Store, StoryMember

_WORD = re.compile(r"\w+")
_NONE = np.zeros(0, np.float32)  # the lead vector of an article without one: like no other


class StoredStories(Protocol):
    """What story grouping reads of the store: the stories of stored articles, by publish days or ids, and
    the vectors of their passages, in order."""

    def story_members(self, days: tuple[date, date] | None) -> Iterable[StoryMember]: ...

    def story_members_of(self, article_ids: Sequence[str]) -> Iterable[StoryMember]: ...

    def article_vectors(self, article_ids: Sequence[str]) -> dict[str, list[Sequence[float]]]: ...


def story_id_for(article_id: str) -> str:
    """The id of a story started by this article: stable, so a rebuild gives the same ids."""
    return "s" + hashlib.sha1(article_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class _Member:
    article_id: str
    story_id: str
    copy_of: str | None
    day: int | None  # publish date as an ordinal
    minhash: LeanMinHash
    vector: np.ndarray | None = None  # unit vector of the first passage, fetched when first needed
    body: np.ndarray | None = None  # unit mean of its passages' unit vectors, fetched with it


class StoryIndex:
    """The stored articles new ones are compared with, kept in step as a run assigns stories.

    Only the stored articles published near the days of the articles grouped are read (within
    `copy_window_days`; the undated for an undated one), each once: grouping costs what the new articles
    need, not what the store holds, and a run with nothing new reads nothing."""

    def __init__(self, config: StoryConfig, stored: StoredStories) -> None:
        self.config = config
        self.seconds = 0.0  # spent grouping, for the ingest summary
        self._stored = stored
        self.reload()

    def reload(self) -> None:
        """Read the stored articles again as they are needed: another ingest has written meanwhile."""
        config = self.config
        self._template = MinHash(num_perm=config.permutations)
        self._lsh = MinHashLSH(threshold=config.near_copy, num_perm=config.permutations)
        self._members: dict[str, _Member] = {}
        self._by_day: dict[int, set[str]] = {}
        self._loaded_days: set[int] = set()
        self._undated_loaded = False

    def _load(self, day: int | None) -> None:
        """Read the stored articles an article of this day may be compared with, those not read yet."""
        started = time.perf_counter()
        if day is None:
            spans: list[tuple[date, date] | None] = [] if self._undated_loaded else [None]
            self._undated_loaded = True
        else:
            reach = max(self.config.copy_window_days, self.config.window_days)
            missing = [d for d in range(day - reach, day + reach + 1) if d not in self._loaded_days]
            self._loaded_days.update(missing)
            spans = [(date.fromordinal(a), date.fromordinal(b)) for a, b in _runs(missing)]
        for span in spans:
            self._take(self._stored.story_members(span))
        self.seconds += time.perf_counter() - started

    def _take(self, members: Iterable[StoryMember]) -> None:
        for member in members:
            if member.article_id in self._members:
                continue  # read already, or grouped in this run
            if member.signature is None or len(member.signature) != 4 * self.config.permutations:
                continue  # made with other settings: it still has its story, but is not compared
            hashes = np.frombuffer(member.signature, dtype=np.uint32)
            digest = is_digest(member.title)  # (compared for copies only: no vectors to fetch)
            self._add(
                _Member(
                    member.article_id,
                    member.story_id,
                    member.copy_of,
                    _ordinal(member.published),
                    LeanMinHash(seed=1, hashvalues=hashes, scheme=self._template.scheme),
                    _NONE if digest else None,
                    _NONE if digest else None,
                )
            )

    def duplicate_link(self, original: str) -> StoryLink:
        """The story of an article whose text is exactly that of a stored one: the original's."""
        if original not in self._members:
            self._take(self._stored.story_members_of([original]))
        member = self._members.get(original)
        if member is None:
            return StoryLink(story_id_for(original), original)
        return StoryLink(member.story_id, member.copy_of or original)

    def assign(
        self,
        article_id: str,
        *,
        published: date | None,
        passages: Sequence[str],
        lead_vector: Sequence[float] | None,
        passage_vectors: Sequence[Sequence[float]] = (),
        digest: bool = False,
    ) -> StoryLink:
        """Give an article its story: that of its nearest copy, else of the most alike article within the
        window, else a new one. The article is then compared with those that come after it. A digest
        (`digest`: many stories on one page) joins and is joined by copies only."""
        day = _ordinal(published)
        self._load(day)
        started = time.perf_counter()
        self.forget(article_id)  # a changed article is grouped afresh
        minhash = self.signature(passages)
        vector = _unit(lead_vector) if lead_vector is not None and not digest else _NONE
        body = _body(passage_vectors) if not digest else _NONE
        original = self._nearest_copy(minhash, day)
        if original is not None:
            story, copy_of = original.story_id, original.copy_of or original.article_id
        else:
            alike = self._most_alike(vector, body, day)
            story, copy_of = (alike.story_id if alike else story_id_for(article_id)), None
        self._add(_Member(article_id, story, copy_of, day, minhash, vector, body))
        self.seconds += time.perf_counter() - started
        return StoryLink(story, copy_of, minhash.hashvalues.astype(np.uint32).tobytes())

    def forget(self, article_id: str) -> None:
        """Stop comparing with an article (it changed or left the store)."""
        member = self._members.pop(article_id, None)
        if member is None:
            return
        self._lsh.remove(article_id)
        if member.day is not None:
            self._by_day[member.day].discard(article_id)

    def signature(self, passages: Sequence[str]) -> LeanMinHash:
        """MinHash of the article's word shingles (taken passage by passage, so overlaps count once)."""
        n = self.config.shingle_words
        shingles: set[bytes] = set()
        for text in passages:
            words = _WORD.findall(text.lower())
            shingles.update(" ".join(words[i : i + n]).encode() for i in range(max(len(words) - n + 1, 1)))
        minhash = MinHash(
            num_perm=self.config.permutations,
            permutations=self._template.permutations,
            scheme=self._template.scheme,
        )
        minhash.update_batch(list(shingles))
        return LeanMinHash(minhash)

    def _add(self, member: _Member) -> None:
        self._members[member.article_id] = member
        self._lsh.insert(member.article_id, member.minhash, check_duplication=False)
        if member.day is not None:
            self._by_day.setdefault(member.day, set()).add(member.article_id)

    def _nearest_copy(self, minhash: LeanMinHash, day: int | None) -> _Member | None:
        reach = self.config.copy_window_days
        scored = [
            (minhash.jaccard(member.minhash), key)
            for key in self._lsh.query(minhash)
            if (member := self._members.get(key)) is not None
            and (day is None or member.day is None or abs(member.day - day) <= reach)
        ]
        best = max(scored, default=None)
        return self._members[best[1]] if best and best[0] >= self.config.near_copy else None

    def _most_alike(self, vector: np.ndarray, body: np.ndarray, day: int | None) -> _Member | None:
        """The article within the window most like this one: whole articles alike (`same_story_body`),
        headlines and leads (`same_story`), or both somewhat (`same_story_both`)."""
        if day is None or not (vector.size or body.size):
            return None  # without a date there is no window: only copies are grouped
        window = self.config.window_days
        ids = sorted(i for d in range(day - window, day + window + 1) for i in self._by_day.get(d, ()))
        self._fetch_vectors(ids)
        members = [self._members[i] for i in ids]
        if not members:
            return None
        lead = _similarities([m.vector for m in members], vector)
        whole = _similarities([m.body for m in members], body)
        c = self.config
        alike = (
            (lead >= c.same_story)
            | (whole >= c.same_story_body)
            | (np.minimum(lead, whole) >= c.same_story_both)
        )
        score = np.where(alike, np.maximum(lead, whole), -np.inf)
        best = int(np.argmax(score))
        return members[best] if alike[best] else None

    def _fetch_vectors(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if self._members[i].vector is None]
        if not missing:
            return
        found = self._stored.article_vectors(missing)
        for article_id in missing:  # an article without stored vectors is compared as unlike any
            vectors = found.get(article_id) or []
            member = self._members[article_id]
            member.vector = _unit(vectors[0]) if vectors else _NONE
            member.body = _body(vectors)


def group_stored(store: Store, index: StoryIndex, *, batch: int = 500) -> int:
    """Group the stored articles that have no story yet (a store made before stories, or after
    `--regroup`), oldest first, from their stored passages and vectors; return how many were grouped.
    Each batch is committed on its own, so an interrupted run leaves the rest for the next."""
    waiting = store.without_story()
    originals = [(article_id, day) for article_id, day, duplicate_of in waiting if duplicate_of is None]
    for start in range(0, len(originals), batch):
        part = originals[start : start + batch]
        ids = [article_id for article_id, _ in part]
        texts, vectors = store.passage_texts(ids), store.article_vectors(ids)
        titles = {a.article_id: a.title for a in store.articles(ids).values()}
        links = {}
        for article_id, day in part:
            found = vectors.get(article_id, [])
            links[article_id] = index.assign(
                article_id,
                published=day,
                passages=texts.get(article_id, []),
                lead_vector=found[0] if found else None,
                passage_vectors=found,
                digest=is_digest(titles.get(article_id)),
            )
        store.set_stories(links)
    copies = {article_id: index.duplicate_link(original) for article_id, _, original in waiting if original}
    if copies:
        store.set_stories(copies)
    return len(waiting)


def _runs(days: list[int]) -> list[tuple[int, int]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _body(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """A whole article's vector: the mean of its passages' unit vectors, made unit."""
    if not len(vectors):
        return _NONE
    return _unit(np.mean([_unit(v) for v in vectors], axis=0))


def _similarities(vectors: Sequence[np.ndarray | None], vector: np.ndarray) -> np.ndarray:
    """Each vector's cosine with a unit vector, in one product; 0 for none, or one of another shape."""
    found = np.zeros(len(vectors), np.float32)
    rows = [i for i, v in enumerate(vectors) if v is not None and v.size and v.shape == vector.shape]
    if rows:
        found[rows] = np.stack([vectors[i] for i in rows]) @ vector  # type: ignore[misc]
    return found


def _unit(vector: Sequence[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / max(float(np.linalg.norm(array)), 1e-12)


def _ordinal(day: date | None) -> int | None:
    return day.toordinal() if day else None
