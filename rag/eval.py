"""`python -m rag.eval`: measure retrieval and answers on news questions whose answering articles are known.

Each question is asked with its `question_date` as the as-of date. The ranked passages are mapped to
their articles (first appearance), and the gold articles' ranks give Hit@1/5/10, MRR@k and Recall@k. The
default answerer answers from the first passages, as `python -m rag ask` would; its answer is checked for
the expected answer text and for citing a gold article.

    python -m rag.eval --questions dev_questions.jsonl --corpus corpus.jsonl.gz [--store DIR] [-k 10]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.pipeline import ingest_paths
from rag.answer import Answerer, Sources, TextDelta, answerer_for
from rag.config import Settings, load_settings
from rag.embeddings import embedding_model_for
from rag.retrieve import Passage, Query, content_terms, retrieve
from rag.store import PassageFilter, Store, StoreError, open_store

RETRIEVERS = ("newsdesk", "dense", "keyword")
ANSWER_PASSAGES = 6  # what `python -m rag ask` answers from by default
DEPTH = 40  # passages ranked per question, enough to reach k distinct articles


@dataclass(frozen=True)
class Question:
    """A question with the date it was asked, the answers accepted and the articles that answer it."""

    question_id: str
    question: str
    as_of: date
    answers: tuple[str, ...]
    gold: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What one question got: the articles ranked, where the first gold article came, and the answer."""

    question_id: str
    question: str
    as_of: str
    gold: list[str]
    ranked: list[str]
    gold_rank: int | None  # 1-based rank of the first gold article within k, or None
    gold_found: int  # gold articles within the first k
    answer: str | None
    cited: list[str]
    contains_answer: bool | None
    cites_gold: bool | None


def read_questions(path: Path, *, limit: int | None = None) -> list[Question]:
    """Read a questions file (JSONL: question, question_date, answer_text, gold_doc_ids)."""
    questions = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                answers = record.get("answer_text") or []
                questions.append(
                    Question(
                        question_id=str(record.get("question_id", number)),
                        question=str(record["question"]),
                        as_of=_day(str(record["question_date"])),
                        answers=tuple([answers] if isinstance(answers, str) else answers),
                        gold=tuple(record["gold_doc_ids"]),
                    )
                )
            except (KeyError, ValueError, TypeError) as error:
                raise ValueError(f"{path} line {number}: not a question record ({error})") from error
            if limit is not None and len(questions) == limit:
                break
    return questions


def _day(text: str) -> date:
    """Parse a question date written 2022/06/16, 2022-06-16 or as a full ISO timestamp."""
    return datetime.fromisoformat(text.strip().replace("/", "-")).date()


def normalize(text: str) -> str:
    """Lower case without accents, punctuation, quotes or articles (SQuAD-style answer matching)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_answer(answer: str, accepted: Sequence[str]) -> bool:
    """Whether any accepted answer appears in the answer as whole words, after normalizing both."""
    said = f" {normalize(answer)} "
    return any(f" {normalize(a)} " in said for a in accepted if normalize(a))


def rank_articles(passages: Sequence[Passage] | Sequence[str]) -> list[str]:
    """Article ids in the order their first passage appears."""
    ids = (p if isinstance(p, str) else p.article_id for p in passages)
    return list(dict.fromkeys(ids))


def score(question: Question, ranked: Sequence[str], *, k: int) -> tuple[int | None, int]:
    """The 1-based rank of the first gold article within k (or None), and how many are within k."""
    top = list(ranked[:k])
    ranks = [top.index(g) + 1 for g in question.gold if g in top]
    return (min(ranks) if ranks else None), len(ranks)


def summarize(
    outcomes: Sequence[Outcome], questions: Sequence[Question], *, k: int
) -> dict[str, float | int]:
    """Hit@1/5/10, MRR@k and Recall@k by article, answer containment and the share citing a gold article."""
    n = len(outcomes)
    if not n:
        return {"questions": 0}
    gold_counts = {q.question_id: len(q.gold) for q in questions}
    ranks = [o.gold_rank for o in outcomes]
    figures: dict[str, float | int] = {"questions": n}
    for cut in (1, 5, 10):
        figures[f"hit@{cut}"] = sum(1 for r in ranks if r is not None and r <= cut) / n
    figures[f"mrr@{k}"] = sum(1 / r for r in ranks if r is not None and r <= k) / n
    figures[f"recall@{k}"] = sum(o.gold_found / max(gold_counts[o.question_id], 1) for o in outcomes) / n
    answered = [o for o in outcomes if o.answer is not None]
    if answered:
        figures["answer_contains"] = sum(1 for o in answered if o.contains_answer) / len(answered)
        figures["answer_cites_gold"] = sum(1 for o in answered if o.cites_gold) / len(answered)
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in figures.items()}


class Ranker:
    """Ranks articles for a question with one of the retrievers compared in the evaluation."""

    def __init__(self, kind: str, *, store: Store, embedder: BaseEmbedding) -> None:
        self.kind, self.store, self.embedder = kind, store, embedder
        self._dense: Callable[[str, date], list[str]] | None = None

    def rank(self, question: Question) -> tuple[list[str], list[Passage]]:
        """Ranked article ids, and the passages to answer from (only Newsdesk's retrieval answers)."""
        if self.kind == "newsdesk":
            retrieval = retrieve(
                Query(question.question, as_of=question.as_of, k=DEPTH),
                store=self.store,
                embedder=self.embedder,
            )
            return rank_articles(retrieval.passages), retrieval.passages[:ANSWER_PASSAGES]
        if self.kind == "keyword":
            hits = self.store.keyword_search(
                content_terms(question.question), k=DEPTH, where=PassageFilter(as_of=_end_of(question.as_of))
            )
            return rank_articles([str(hit.metadata["article_id"]) for hit in hits]), []
        return self._llama_index_dense(question.question, question.as_of), []

    def _llama_index_dense(self, question: str, as_of: date) -> list[str]:
        """The plain llama-index VectorStoreIndex retriever over the same Chroma collection and model."""
        if self._dense is None:
            from llama_index.core import VectorStoreIndex
            from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
            from llama_index.vector_stores.chroma import ChromaVectorStore

            index = VectorStoreIndex.from_vector_store(
                ChromaVectorStore(chroma_collection=self.store.collection), embed_model=self.embedder
            )

            def dense(text: str, day: date) -> list[str]:
                filters = MetadataFilters(
                    filters=[
                        MetadataFilter(key="published_ts", value=_end_of(day), operator=FilterOperator.LTE)
                    ]
                )
                nodes = index.as_retriever(similarity_top_k=DEPTH, filters=filters).retrieve(text)
                return rank_articles([str(node.metadata["article_id"]) for node in nodes])

            self._dense = dense
        return self._dense(question, as_of)


def _end_of(day: date) -> float:
    return datetime.combine(day, datetime.max.time(), tzinfo=UTC).timestamp()


def evaluate(
    questions: Sequence[Question],
    *,
    store: Store,
    embedder: BaseEmbedding,
    answerer: Answerer | None,
    retriever: str = "newsdesk",
    k: int = 10,
) -> Iterator[Outcome]:
    """Ask every question and yield what it got."""
    ranker = Ranker(retriever, store=store, embedder=embedder)
    for question in questions:
        ranked, passages = ranker.rank(question)
        gold_rank, gold_found = score(question, ranked, k=k)
        answer: str | None = None
        cited: list[str] = []
        if answerer is not None and retriever == "newsdesk":
            answer, cited = _answer(answerer, question, passages)
        yield Outcome(
            question_id=question.question_id,
            question=question.question,
            as_of=question.as_of.isoformat(),
            gold=list(question.gold),
            ranked=ranked[:k],
            gold_rank=gold_rank,
            gold_found=gold_found,
            answer=answer,
            cited=cited,
            contains_answer=None if answer is None else contains_answer(answer, question.answers),
            cites_gold=None if answer is None else any(c in question.gold for c in cited),
        )


def _answer(answerer: Answerer, question: Question, passages: Sequence[Passage]) -> tuple[str, list[str]]:
    text: list[str] = []
    cited: list[str] = []
    for event in answerer.answer(question.question, passages, as_of=question.as_of):
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, Sources):
            cited = [c.passage.article_id for c in event.citations]
    return "".join(text), cited


def render_table(figures: dict[str, float | int], *, retriever: str, mode: str | None) -> str:
    """The figures as a small Markdown table."""
    rows = [f"| {key} | {value} |" for key, value in figures.items()]
    title = f"retriever: {retriever}" + (f", answerer: {mode}" if mode else "")
    return "\n".join([title, "", "| figure | value |", "|---|---:|", *rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m rag.eval",
        description="Measure retrieval (Hit@1/5/10, MRR, Recall by article) and answers on known questions.",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        required=True,
        help="JSONL: question, question_date, answer_text, gold_doc_ids",
    )
    parser.add_argument("--corpus", type=Path, nargs="+", required=True, help="article files or folders")
    parser.add_argument(
        "--store", type=Path, help="the evaluation's own store (default: data/eval/<corpus name>); reused"
    )
    parser.add_argument("-k", type=int, default=10, help="articles ranked per question (default 10)")
    parser.add_argument("--out", type=Path, help="write each question's ranks and answer here (JSONL)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument(
        "--retriever",
        choices=RETRIEVERS,
        default="newsdesk",
        help="newsdesk (hybrid, date-aware; default), dense (plain llama-index VectorStoreIndex retriever), "
        "keyword (the FTS5 BM25 index alone)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Ingest the corpus into the evaluation's store, ask every question, print the figures."""
    args = parse_args(argv)
    try:
        questions = read_questions(args.questions, limit=args.limit)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = re.sub(r"(\.jsonl)?(\.gz)?$", "", args.corpus[0].name) or "corpus"
    # Always an embedded store of its own, so an evaluation never mixes with the articles of a Chroma server.
    config: Settings = load_settings(
        data_dir=args.store or Path("data") / "eval" / name, CHROMA_HOST=None, CHROMA_PORT=None
    )
    embedder = embedding_model_for(config)
    answerer = answerer_for(config)
    started = time.perf_counter()
    try:
        with open_store(config) as store:
            summary = ingest_paths(args.corpus, config=config, store=store, embedder=lambda: embedder)
            print(summary.render(), file=sys.stderr)
            outcomes = list(
                evaluate(
                    questions,
                    store=store,
                    embedder=embedder,
                    answerer=answerer,
                    retriever=args.retriever,
                    k=args.k,
                )
            )
    except (StoreError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "".join(json.dumps(asdict(o), ensure_ascii=False) + "\n" for o in outcomes), "utf-8"
        )
    figures = summarize(outcomes, questions, k=args.k)
    mode = getattr(answerer, "mode", None) if args.retriever == "newsdesk" else None
    print(render_table(figures, retriever=args.retriever, mode=mode))
    print(f"({len(outcomes)} questions in {time.perf_counter() - started:.1f} s, store {config.data_dir})")
    print(json.dumps({"retriever": args.retriever, "k": args.k, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
