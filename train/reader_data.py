"""Training groups for the reader: a question, one sentence that answers it, and sentences that do not.

Two sources, both from `../shared/eval/`, never the development sets:
- SQuAD v1.1 (`squad11_train_44_articles`, `squad11_dev_half_a`): the sentence holding the answer span is the
  positive; the paragraph's other sentences, and two of another paragraph of the same Wikipedia article, are
  the negatives.
- RealTimeQA's training questions with their gold articles' texts from the news corpus: the gold article's
  sentence holding the answer (the one sharing most of the question's words, when several do) is the
  positive; the article's other sentences and those of the month's articles that share most of the
  question's words (what a search would bring up beside it) are the negatives.

Sentences are split as the offline answerer splits them (`rag.sentences`), so the model reads what it will
be given.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from rag.retrieve import content_terms
from rag.sentences import holds_answer, sentences


@dataclass(frozen=True)
class Group:
    """One question, its answering sentence first, then sentences that do not answer it."""

    question: str
    positive: str
    negatives: tuple[str, ...]
    source: str  # "squad" or "news"


def squad_groups(path: Path, *, negatives: int, rng: random.Random) -> Iterator[Group]:
    """Groups from a SQuAD v1.1 file."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    for article in data:
        paragraphs = [p for p in article["paragraphs"] if p["context"].strip()]
        split = [[(a, b, p["context"][a:b]) for a, b in sentences(p["context"])] for p in paragraphs]
        for index, paragraph in enumerate(paragraphs):
            spans = split[index]
            others = [s for i, ss in enumerate(split) if i != index for _, _, s in ss]
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                start = answer["answer_start"]
                answering = [s for a, b, s in spans if a <= start < b]
                if not answering or len(spans) < 2:
                    continue
                near = [
                    s for a, b, s in spans if not (a <= start < b) and not holds_answer(s, [answer["text"]])
                ]
                far = [
                    s
                    for s in rng.sample(others, min(2, len(others)))
                    if not holds_answer(s, [answer["text"]])
                ]
                chosen = rng.sample(near, min(len(near), negatives - len(far))) + far
                if chosen:
                    yield Group(qa["question"], answering[0], tuple(chosen), "squad")


@dataclass(frozen=True)
class NewsArticle:
    title: str
    text: str
    published: date | None
    words: frozenset[str]


def read_news(corpus: Path, *, wanted_days: set[date], window: int) -> dict[str, NewsArticle]:
    """The corpus articles published within `window` days before any of the wanted days."""
    reach = {day - timedelta(days=d) for day in wanted_days for d in range(window + 1)}
    articles: dict[str, NewsArticle] = {}
    with gzip.open(corpus, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            published = _day(record.get("publish_date"))
            if published not in reach:
                continue
            title, text = record.get("title") or "", record.get("text") or ""
            words = frozenset(content_terms(f"{title} {text[:3000]}"))
            articles[record["doc_id"]] = NewsArticle(title, text, published, words)
    return articles


def news_groups(
    questions: Path, corpus: Path, *, negatives: int, rng: random.Random, window: int = 31
) -> Iterator[Group]:
    """Groups from RealTimeQA-format training questions, their gold articles and the month's others."""
    records = [json.loads(line) for line in questions.read_text("utf-8").splitlines() if line.strip()]
    days = {d for r in records if (d := _day(r["question_date"]))}
    articles = read_news(corpus, wanted_days=days, window=window)
    for record in records:
        asked, answer = record["question"], record["answer_text"]
        day = _day(record["question_date"])
        wanted = set(content_terms(asked))
        gold = [articles[g] for g in record["gold_doc_ids"] if g in articles]
        gold_ids = set(record["gold_doc_ids"])
        month = [
            (len(wanted & a.words), doc_id)
            for doc_id, a in articles.items()
            if doc_id not in gold_ids
            and a.published
            and day
            and day - timedelta(days=window) <= a.published <= day
        ]
        searched = [articles[doc_id] for _, doc_id in sorted(month, reverse=True)[:3]]
        distractors = [
            s
            for a in searched
            for s in _sentences_of(a)
            if not holds_answer(s, [answer]) and len(s.split()) > 4
        ]
        for article in gold:
            said = _sentences_of(article)
            answering = [s for s in said if holds_answer(s, [answer])]
            if not answering:
                continue
            positive = max(answering, key=lambda s: len(wanted & set(content_terms(s))))
            near = [s for s in said if not holds_answer(s, [answer]) and len(s.split()) > 4]
            far = rng.sample(distractors, min(len(distractors), negatives // 2))
            chosen = rng.sample(near, min(len(near), negatives - len(far))) + far
            if chosen:
                yield Group(asked, positive, tuple(chosen), "news")


def _sentences_of(article: NewsArticle) -> list[str]:
    """An article's sentences as the answerer sees them: its headline, then its text's sentences."""
    said = [article.text[a:b] for a, b in sentences(article.text)]
    return ([article.title] if article.title else []) + said


def _day(text: object) -> date | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).strip().replace("/", "-")[:10]).date()
    except ValueError:
        return None
