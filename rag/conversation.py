"""One turn of a conversation: make the question standalone, retrieve, and stream a cited answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.answer import Answerer, ChatAnswerer
from rag.config import AnswerConfig, RetrievalConfig, StoryConfig
from rag.documents import by_article
from rag.events import AnswerEvent
from rag.retrieve import Query, Retrieval, retrieve
from rag.store import Store
from rag.stories import timeline, timeline_subject, with_stories
from rag.support import with_checks


@dataclass(frozen=True)
class Turn:
    """A question as asked and as searched, what was found, and the answer's event stream."""

    question: str
    standalone: str
    retrieval: Retrieval
    events: Iterator[AnswerEvent]


def ask(
    query: Query,
    *,
    history: Sequence[str] = (),
    store: Store,
    embedder: BaseEmbedding,
    answerer: Answerer,
    config: RetrievalConfig,
    stories: StoryConfig | None = None,
    answering: AnswerConfig | None = None,
) -> Turn:
    """Answer a question in the light of the earlier (standalone) questions of the conversation: a
    timeline for "how did X unfold", else an answer from the passages found, its sources dated."""
    stories = stories or StoryConfig()
    standalone = answerer.standalone_question(query.question, history)
    subject = timeline_subject(standalone)
    if subject:
        retrieval, events = timeline(
            replace(query, question=standalone),
            subject,
            store=store,
            embedder=embedder,
            config=config,
            stories=stories,
        )
        return Turn(query.question, standalone, retrieval, events)
    retrieval = retrieve(replace(query, question=standalone), store=store, embedder=embedder, config=config)
    events = answer_from(
        standalone, retrieval, as_of=query.as_of, store=store, answerer=answerer, stories=stories,
        answering=answering,
    )  # fmt: skip
    return Turn(query.question, standalone, retrieval, events)


def answer_from(
    question: str,
    retrieval: Retrieval,
    *,
    as_of: date,
    store: Store,
    answerer: Answerer,
    stories: StoryConfig | None = None,
    answering: AnswerConfig | None = None,
) -> Iterator[AnswerEvent]:
    """The answer to a question from the passages found: each sentence checked against its sources (a chat
    answer revised once when it needs it), and the sources dated, with a warning when a question about now
    has only older ones."""
    sources = by_article(retrieval.passages)  # one numbered source, and one card, per article
    return with_stories(
        with_checks(
            answerer.answer(question, sources, as_of=as_of),
            min_overlap=(answering or AnswerConfig()).min_support,
            question=question,
            reviser=answerer if isinstance(answerer, ChatAnswerer) else None,
            passages=sources,
        ),
        store=store,
        frame=retrieval.frame,
        as_of=as_of,
        config=stories or StoryConfig(),
    )
