"""Answer a question from retrieved passages, citing each claim: offline extractive, or a chat model.

Both answerers yield the same events: pieces of text as they are ready, then the sources that were cited.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from rag.citations import CitationTracker
from rag.config import AnswerConfig, Settings
from rag.documents import Passage
from rag.events import AnswerEvent, Citation, Sources, TextDelta
from rag.places import places_named
from rag.prompts import NO_ANSWER, answer_messages, revise_messages, rewrite_messages
from rag.reader import Reader, default_reader
from rag.retrieve import content_terms
from rag.sentences import closest_spans, sentences, stem, stems

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

# A sentence naming things the question does not (names, numbers) may answer it; one that only restates
# the question answers nothing (see AnswerConfig.new_fact_bonus).
_NAME_OR_NUMBER = re.compile(r"(?<![.!?]\s)(?<!^)\b(?:[A-Z][\w’'.-]*|\$?\d[\d,.%]*)")
# What a question asks for: a number or an amount, a date, or else a name (a person, place, organisation).
_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|long|old|far|often|big|large|high|fast)\b|\bby how\b"
    r"|\b(?:what|which) (?:\w+ )?(?:percentage|percent|share|number|amount|figure|price|cost|age|rate|sum"
    r"|total|tally|toll|count)\b",
    re.IGNORECASE,
)
_ASKS_PLACE = re.compile(
    r"\b(?:which|what) (?:(?:u\.s\.|us|american|european|african|asian|latin american|south american"
    r"|middle eastern) )?(?:state|country|nation)\b",
    re.IGNORECASE,
)
_ASKS_DATE = re.compile(r"^\W*when\b|\b(?:what|which) (?:date|day|year|month)\b|\bsince when\b", re.I)
_NUMBER = re.compile(
    r"\$?\d[\d,.]*%?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty"
    r"|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|trillion|dozens?|half)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}\b|\d{1,2} (?:jan|feb|mar"
    r"|apr|may|jun|jul|aug|sep|oct|nov|dec)|(?:mon|tues|wednes|thurs|fri|satur|sun)day|(?:19|20)\d\d\b"
    r"|yesterday|today|tomorrow|last (?:week|month|year)|next (?:week|month|year))",
    re.IGNORECASE,
)
# Sentences written to steer a language model are quoted by no honest answer.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules)\b|\b(system prompt|you are now)\b",
    re.I,
)
# Page furniture a sentence splitter leaves among the sentences: times a page was updated, bylines, share
# and sign-up prompts, photo credits. Only a short "sentence" is furniture.
_FURNITURE = re.compile(
    r"(?:(?:last )?(?:updated|modified|published|posted)):? (?:on |at )?"
    r"(?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)\w*\b|\w+ ago).*"
    r"|(?:share (?:this|the|on|via|to)|sign up|subscribe to|follow us|click here|read more)\b.*"
    r"|leave a comment\b.*"
    r"|(?:watch|listen|read|related|video|photos?|images?|credits?|file photo) ?:.*"
    r"|\(?\d{1,2}:\d{2} ?[ap]\.?m\.?(?: [A-Z]{2,4})?\)?\.?",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"By [A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}(?:(?:,| and|, and) [A-Z][\w.'’ -]*)*\.?")
_FURNITURE_WORDS = 12
_SITE_SUFFIX = re.compile(r"(?:\s+[|\-–—]\s+[^\s|\-–—]+(?: [^\s|\-–—]+){0,3})+$")  # a title's "| Site"
_CARRIED = re.compile(r" \((?:[\w'’-]+ ?)+\)$")  # the earlier question's words a follow-up carries
_PARTS = re.compile(r",? and (?=(?:who|what|when|where|which|why|how)\b)", re.I)  # "…, and when …?"
_FOLLOW_UP = re.compile(
    r"^(and|but|so|also|then|what about|how about)\b|\b(he|she|it|they|them|his|her|its|their|that|those)\b",
    re.I,
)


class Answerer(Protocol):
    """Writes an answer from numbered passages."""

    mode: str

    def answer(self, question: str, passages: Sequence[Passage], *, as_of: date) -> Iterator[AnswerEvent]: ...

    def standalone_question(self, question: str, history: Sequence[str]) -> str: ...


class ExtractiveAnswerer:
    """Answers with the passages' own sentences that best cover the question, each cited."""

    mode = "offline extractive"

    def __init__(self, config: AnswerConfig | None = None, *, reader: Reader | None = None) -> None:
        self.config = config or AnswerConfig()
        self.reader = reader or default_reader()

    def answer(self, question: str, passages: Sequence[Passage], *, as_of: date) -> Iterator[AnswerEvent]:
        chosen = self._choose(question, passages)
        if not chosen:
            yield TextDelta(NO_ANSWER)
            yield Sources([], 0, self.mode)
            return
        tracker = CitationTracker(len(passages))
        spans: dict[int, list[tuple[int, int]]] = {}
        dated = self._dated(question, passages, chosen)
        for n, (number, span) in enumerate(chosen):
            text = _said(passages[number - 1], span)
            yield TextDelta(("" if n == 0 else " ") + f"{text} [{tracker.cite(number)}]")
            spans.setdefault(number, [])
            if span != HEADLINE:  # (a headline is shown on the source card, not marked in its text)
                spans[number].append(span)
            if n == 0 and dated:
                yield TextDelta(f" {dated} [{tracker.cite(number)}]")
        citations = [
            Citation(i + 1, passages[number - 1], tuple(sorted(spans[number])))
            for i, number in enumerate(tracker.cited)
        ]
        yield Sources(citations, 0, self.mode)

    @staticmethod
    def _dated(question: str, passages: Sequence[Passage], chosen: list[tuple[int, tuple[int, int]]]) -> str:
        """For a question asking when, whose chosen sentences give no date: the lead article's publish date,
        said as such ("Coastal Post published this on 8 May 2024"), as its source card shows it."""
        quoted = (_said(passages[number - 1], span) for number, span in chosen)
        if asks_for(question) != "date" or any(_DATE.search(text) for text in quoted):
            return ""
        lead = passages[chosen[0][0] - 1]
        return f"{lead.outlet_name} published this on {lead.published_day}." if lead.published_date else ""

    def _choose(self, question: str, passages: Sequence[Passage]) -> list[tuple[int, tuple[int, int]]]:
        """Pick (passage number, sentence span) pairs that answer the question, best first."""
        wanted, asked = stems(question), asks_for(question)
        if not wanted or not passages:
            return []
        said = (
            (number, span, _said(passage, span))
            for number, passage in enumerate(passages, start=1)
            for span in [*sentences(passage.text), *([HEADLINE] if passage.title else [])]
        )
        candidates = [
            (number, span, text, stems(text))
            for number, span, text in said
            if _quotable(text) and (span != HEADLINE or len(sentences(text)) == 1)  # (one marker, one claim)
        ]
        # (words weighed by their rarity among the passages' sentences: a headline restates its article)
        weight = term_weights(wanted, [words for _, span, _, words in candidates if span != HEADLINE])
        total = sum(weight.values())

        def coverage(words: set[str]) -> float:
            return sum(weight[t] for t in wanted & words) / total

        found: dict[int, set[str]] = {}
        for number, span, _, words in candidates:  # (whether a passage answers is its text's to say)
            if span != HEADLINE:
                found.setdefault(number, set()).update(words)
        c = self.config
        supported = {number for number, words in found.items() if coverage(words) >= c.min_coverage}
        enough = c.min_sentence_coverage
        if not any(n in supported and coverage(words) >= enough for n, _, _, words in candidates):
            return []  # (no sentence holds enough of the question: the sources don't say)
        top = max(p.score for p in passages) or 1.0
        # The sentences most like an answer by their words go to the reader (a bounded number: its cost
        # follows k, not the articles' length); its score, their words and their passage's rank decide.
        pool = sorted(
            (
                (covered + c.new_fact_bonus * min(_new_facts(text, wanted) / 2, 1.0), number, span, text)
                for number, span, text, words in candidates
                if number in supported and (covered := coverage(words))
            ),
            key=lambda item: item[0],
            reverse=True,
        )[: c.reader_candidates]
        # The reader reads the question as asked, without the words a follow-up carries for the search, and
        # each part of a question of two ("How much will it cost, and when did it open?") on its own: a
        # sentence scores by how near it comes to the best answer of a part.
        texts = [text for *_, text in pool]
        parts = [self.reader.score(part, texts) for part in _PARTS.split(_CARRIED.sub("", question))]
        read = np.max([np.subtract(scores, max(scores)) for scores in parts], axis=0)
        scored = []
        for reading, (lexical, number, span, text) in zip(read, pool, strict=True):
            rank = passages[number - 1].score / top
            score = float(reading) + c.word_weight * lexical + c.rank_weight * rank
            scored.append((score, names_asked_for(text, asked, wanted), number, span, text))
        scored.sort(key=lambda item: item[0], reverse=True)
        chosen: dict[str, tuple[bool, int, tuple[int, int]]] = {}  # one sentence of each wording
        for score, kind, number, span, text in scored:
            if len(chosen) == c.max_sentences or score < scored[0][0] - c.keep_within:
                break
            chosen.setdefault(" ".join(re.findall(r"\w+", text.lower())), (kind, number, span))
        # The best sentence naming a thing of the kind asked for leads; the rest keep their order. A number,
        # date or place asked for is brought in when no chosen sentence gives one (a name is in most).
        ordered = sorted(chosen.values(), key=lambda item: not item[0])
        if ordered and not ordered[0][0] and asked != "name":
            lead = next(((True, number, span) for _, kind, number, span, _ in scored if kind), None)
            ordered = ([lead] + ordered)[: c.max_sentences] if lead else ordered
        return [(number, span) for _, number, span in ordered]

    def standalone_question(self, question: str, history: Sequence[str]) -> str:
        """Carry the earlier question's subject into a follow-up that leans on it."""
        if not history or not _is_follow_up(question):
            return question
        carried = [t for t in content_terms(history[-1]) if t not in content_terms(question)]
        return f"{question} ({' '.join(carried)})" if carried else question  # (as _CARRIED reads it)


HEADLINE = (-1, -1)  # the span an answer gives its passage's headline, quoted as a sentence of its own


def _said(passage: Passage, span: tuple[int, int]) -> str:
    """The sentence of a passage at a span, or its headline: without the site's name a web page's title
    ends with ("… | CNN Business", "… - CNN"), a full stop added where it has none."""
    if span == HEADLINE:
        title = _SITE_SUFFIX.sub("", (passage.title or "").strip())
        return title if title[-1:] in (".", "!", "?") else f"{title}."
    return passage.text[span[0] : span[1]]


def _quotable(sentence: str) -> bool:
    """Whether an answer may quote a sentence: not an instruction to a language model, not a question (it
    answers nothing), not a line that only introduces what follows ("The following were named:"), and not
    page furniture ("Updated 3:05 p.m. ET", a byline, a share prompt)."""
    if _INSTRUCTION.search(sentence) or sentence.endswith(("?", ":")):
        return False
    short = len(sentence.split()) <= _FURNITURE_WORDS
    return not (short and (_FURNITURE.fullmatch(sentence) or _BYLINE.fullmatch(sentence)))


def asks_for(question: str) -> str:
    """The kind of thing a question asks for: "number" (how many, what percentage), "date" (when), "place"
    (which state, which country), or "name" (who, where, what company: the commonest kind)."""
    if _ASKS_NUMBER.search(question):
        return "number"
    if _ASKS_DATE.search(question):
        return "date"
    return "place" if _ASKS_PLACE.search(question) else "name"


def names_asked_for(sentence: str, kind: str, wanted: set[str]) -> bool:
    """Whether a sentence names a thing of the asked-for kind that the question itself does not name."""
    if kind == "number":
        found = _NUMBER.findall(sentence)
    elif kind == "date":
        found = _DATE.findall(sentence)
    elif kind == "place":
        return any(not stems(place) <= wanted for place in places_named(sentence))
    else:
        found = [t for t in _NAME_OR_NUMBER.findall(sentence) if t[0] not in "$0123456789"]
    return any(stem(token.lower().strip(".,$%")) not in wanted for token in found)


def _new_facts(sentence: str, wanted: set[str]) -> int:
    """Count the names and numbers in a sentence that the question does not mention."""
    tokens = (token.lower().strip(".,") for token in _NAME_OR_NUMBER.findall(sentence))
    return sum(1 for token in tokens if stem(token) not in wanted)


def without_instructions(passage: Passage) -> Passage:
    """Drop the sentences of a passage that are written to steer a language model."""
    kept = [
        passage.text[a:b] for a, b in sentences(passage.text) if not _INSTRUCTION.search(passage.text[a:b])
    ]
    return passage if len(kept) == len(sentences(passage.text)) else replace(passage, text=" ".join(kept))


def _is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question.strip())) or len(content_terms(question)) <= 2


def term_weights(wanted: set[str], sentence_stems: Sequence[set[str]]) -> dict[str, float]:
    """Weigh question words by rarity among the candidate sentences: rare words carry the question."""
    count = len(sentence_stems)
    return {
        term: math.log(1 + (count + 1) / (0.5 + sum(term in words for words in sentence_stems)))
        for term in wanted
    }


class ChatAnswerer:
    """Answers with a chat model over any OpenAI-compatible endpoint, streamed, markers checked."""

    def __init__(self, config: Settings) -> None:
        from openai import OpenAI

        self.model = config.chat_model
        self.mode = f"chat model {config.chat_model}"
        self.client = OpenAI(api_key=config.openai_api_key or "none", base_url=config.openai_base_url)

    def answer(self, question: str, passages: Sequence[Passage], *, as_of: date) -> Iterator[AnswerEvent]:
        if not passages:
            yield TextDelta(NO_ANSWER)
            yield Sources([], 0, self.mode)
            return
        # Article text is fenced as data in the prompt; sentences that give orders are not sent at all.
        sent = [without_instructions(p) for p in passages]
        stream = self.client.chat.completions.create(
            model=self.model,
            messages=answer_messages(question, sent, today=as_of),  # type: ignore[arg-type]
            stream=True,
            temperature=0,
        )
        tracker = CitationTracker(len(passages))
        written = []
        for chunk in cast("Iterable[ChatCompletionChunk]", stream):
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta and (shown := tracker.feed(delta)):
                written.append(shown)
                yield TextDelta(shown)
        if rest := tracker.finish():
            written.append(rest)
            yield TextDelta(rest)
        yield Sources(_chat_citations("".join(written), tracker, passages), tracker.removed, self.mode)

    def revise(
        self, question: str, citations: Sequence[Citation], draft: str, problems: Sequence[tuple[str, str]]
    ) -> tuple[str, list[Citation], int]:
        """Ask the model once to rewrite or drop an answer's unsupported sentences, from the passages the
        answer cited (numbered as its markers are); return the new text, its citations and the markers
        removed."""
        passages = [without_instructions(c.passage) for c in citations]
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=revise_messages(question, passages, draft, problems),  # type: ignore[arg-type]
            temperature=0,
        )
        tracker = CitationTracker(len(citations))
        text = (tracker.feed(reply.choices[0].message.content or "") + tracker.finish()).strip()
        cited = [c.passage for c in citations]
        return text, _chat_citations(text, tracker, cited), tracker.removed

    def standalone_question(self, question: str, history: Sequence[str]) -> str:
        """Ask the model to rewrite a follow-up as a question that stands on its own."""
        if not history:
            return question
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=rewrite_messages(question, history),  # type: ignore[arg-type]
            temperature=0,
        )
        rewritten = (reply.choices[0].message.content or "").strip().splitlines()
        if rewritten and _keeps_question(question, rewritten[0]):
            return rewritten[0]
        # A small model may answer instead of rewriting: carry the subject the offline way.
        return ExtractiveAnswerer().standalone_question(question, history)


def _keeps_question(question: str, rewritten: str) -> bool:
    """Whether a rewrite is still a question about what the user asked."""
    return rewritten.rstrip().endswith("?") and set(content_terms(question)) <= set(content_terms(rewritten))


def _chat_citations(answer: str, tracker: CitationTracker, passages: Sequence[Passage]) -> list[Citation]:
    """Cite each passage with the sentences of it that share most words with the answer's cited sentences."""
    citations = []
    for number, passage_number in enumerate(tracker.cited, start=1):
        passage = passages[passage_number - 1]
        claims = " ".join(
            answer[s:e] for s, e in sentences(answer) if f"[{number}]" in answer[s : min(e + 8, len(answer))]
        )
        citations.append(Citation(number, passage, closest_spans(claims, passage.text)))
    return citations


def answerer_for(config: Settings) -> Answerer:
    """Use the chat model when one is configured, else the offline extractive answerer."""
    if config.openai_api_key or config.openai_base_url:
        return ChatAnswerer(config)
    return ExtractiveAnswerer(config.answer)
