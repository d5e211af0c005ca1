"""Measure retrieval and answers on news questions whose answering articles are known. It builds its own
store of the corpus with Newsdesk's ingest, so it sits above both `ingest/` and `rag/`.

Each question is asked with its `question_date` as the as-of date. The ranked passages are mapped to
their articles (first appearance), and the gold articles' ranks give Hit@1/5/10, MRR@k and Recall@k. The
default answerer answers from the first passages, as `python -m rag ask` would; its answer is checked for
the expected answer text and for citing a gold article.

    .venv/bin/python bench/evaluate.py --questions dev_questions.jsonl --corpus corpus.jsonl.gz
        [--store DIR] [-k 10]
        [--set recent_floor=0.5 ...] [--out ranks.jsonl] [--against earlier-ranks.jsonl]

Every figure comes with a 95% bootstrap interval over questions; `--against` gives the paired difference
from an earlier run's `--out` file, with its interval, so a change of one question is not read as progress.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.pipeline import ingest_paths
from rag.answer import Answerer, ExtractiveAnswerer, answerer_for
from rag.config import AnswerConfig, RetrievalConfig, Settings, StoryConfig, load_settings, with_overrides
from rag.conversation import answer_from
from rag.documents import Passage
from rag.embeddings import embedding_model_for
from rag.events import Revised, Sources, TextDelta
from rag.retrieve import ANSWER_PASSAGES, Query, Retrieval, content_terms, retrieve
from rag.sentences import holds_answer as contains_answer
from rag.sentences import sentences
from rag.store import UNDATED, PassageFilter, Store, StoreError, open_store
from rag.support import MARKERS, is_refusal

RETRIEVERS = ("newsdesk", "dense", "keyword")
DEPTH = 40  # passages ranked per question, enough to reach k distinct articles
RESAMPLES = 2000  # bootstrap resamples of the questions for each interval


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
    first_sentence_contains: bool | None = None  # the answer's first sentence holds an accepted answer
    # The answer's sentences as the support check saw them (rag/support.py), and whether it declined.
    sentences: int = 0
    cited_sentences: int = 0
    supported_cited: int = 0
    unsupported: int = 0
    refused: bool | None = None
    warned: bool | None = None  # the answer carried the warning that its newest source is old


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


def first_sentence(answer: str) -> str:
    """The answer's first sentence, its citation markers left out."""
    text = MARKERS.sub("", answer).strip()
    spans = sentences(text)
    return text[spans[0][0] : spans[0][1]] if spans else text


def rank_articles(passages: Sequence[Passage] | Sequence[str]) -> list[str]:
    """Article ids in the order their first passage appears."""
    ids = (p if isinstance(p, str) else p.article_id for p in passages)
    return list(dict.fromkeys(ids))


def score(question: Question, ranked: Sequence[str], *, k: int) -> tuple[int | None, int]:
    """The 1-based rank of the first gold article within k (or None), and how many are within k."""
    top = list(ranked[:k])
    ranks = [top.index(g) + 1 for g in question.gold if g in top]
    return (min(ranks) if ranks else None), len(ranks)


def question_figures(outcomes: Sequence[Outcome], *, k: int) -> dict[str, list[float]]:
    """Each figure's value for each question (1/0 for a hit, the reciprocal rank, the share recalled)."""
    ranks = [o.gold_rank for o in outcomes]
    figures: dict[str, list[float]] = {}
    for cut in (1, 5, 10):
        figures[f"hit@{cut}"] = [float(r is not None and r <= cut) for r in ranks]
    figures[f"mrr@{k}"] = [1 / r if r is not None and r <= k else 0.0 for r in ranks]
    figures[f"recall@{k}"] = [o.gold_found / max(len(o.gold), 1) for o in outcomes]
    answered = [o for o in outcomes if o.answer is not None]
    if answered:
        figures["answer_contains"] = [float(bool(o.contains_answer)) for o in answered]
        figures["first_sentence_contains"] = [float(bool(o.first_sentence_contains)) for o in answered]
        figures["answer_cites_gold"] = [float(bool(o.cites_gold)) for o in answered]
        figures["refusal"] = [float(bool(o.refused)) for o in answered]
        # What a reader is told when the sources may not cover the question: a refusal, or an answer
        # with the warning that its newest source is older than the week the question asks about.
        figures["declined_or_warned"] = [float(bool(o.refused or o.warned)) for o in answered]
        # Of an answer's cited sentences, the share their citations support; of all its sentences, the
        # share not supported (uncited ones included). Refusals say nothing to check and are left out.
        checked = [o for o in answered if o.cited_sentences]
        if checked:
            figures["citation_precision"] = [o.supported_cited / o.cited_sentences for o in checked]
        written = [o for o in answered if o.sentences and not o.refused]
        if written:
            figures["unsupported_rate"] = [o.unsupported / o.sentences for o in written]
    return figures


def summarize(outcomes: Sequence[Outcome], *, k: int) -> dict[str, float | int]:
    """Hit@1/5/10, MRR@k and Recall@k by article, answer containment and the share citing a gold article."""
    if not outcomes:
        return {"questions": 0}
    figures: dict[str, float | int] = {"questions": len(outcomes)}
    for name, values in question_figures(outcomes, k=k).items():
        figures[name] = round(sum(values) / len(values), 4)
    return figures


def interval(values: Sequence[float], *, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean of per-question values (or of differences)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (0.0, 0.0)
    picks = np.random.default_rng(seed).integers(0, data.size, size=(RESAMPLES, data.size))
    means = data[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def intervals(outcomes: Sequence[Outcome], *, k: int) -> dict[str, tuple[float, float]]:
    """Each figure's 95% bootstrap interval over questions."""
    return {name: interval(values) for name, values in question_figures(outcomes, k=k).items()}


def differences(
    outcomes: Sequence[Outcome], earlier: Sequence[Outcome], *, k: int
) -> dict[str, tuple[float, float, float]]:
    """Each figure's change from an earlier run over the questions both answered: the mean difference and
    its 95% paired bootstrap interval."""
    before = {o.question_id: o for o in earlier}
    both = [o for o in outcomes if o.question_id in before]
    now, then = question_figures(both, k=k), question_figures([before[o.question_id] for o in both], k=k)
    changes = {}
    for name in now.keys() & then.keys():
        if len(now[name]) != len(then[name]):
            continue  # answers were checked in one run only
        delta = [a - b for a, b in zip(now[name], then[name], strict=True)]
        changes[name] = (round(sum(delta) / len(delta), 4), *interval(delta))
    return dict(sorted(changes.items()))


def read_outcomes(path: Path) -> list[Outcome]:
    """Read the per-question file an earlier run wrote with --out."""
    with path.open(encoding="utf-8") as lines:
        return [Outcome(**json.loads(line)) for line in lines if line.strip()]


class Ranker:
    """Ranks articles for a question with one of the retrievers compared in the evaluation."""

    def __init__(self, kind: str, *, store: Store, embedder: BaseEmbedding, config: RetrievalConfig) -> None:
        self.kind, self.store, self.embedder, self.config = kind, store, embedder, config
        self._dense: Callable[[str, date], list[str]] | None = None

    def rank(self, question: Question) -> tuple[list[str], Retrieval | None]:
        """Ranked article ids, and what to answer from (only Newsdesk's retrieval answers)."""
        if self.kind == "newsdesk":
            retrieval = retrieve(
                Query(question.question, as_of=question.as_of, k=DEPTH),
                store=self.store,
                embedder=self.embedder,
                config=self.config,
            )
            return rank_articles(retrieval.passages), replace(
                retrieval, passages=retrieval.passages[:ANSWER_PASSAGES]
            )
        if self.kind == "keyword":
            hits = self.store.keyword_search(
                content_terms(question.question), k=DEPTH, where=PassageFilter(as_of=_end_of(question.as_of))
            )
            return rank_articles(hits), None
        return self._llama_index_dense(question.question, question.as_of), None

    def _llama_index_dense(self, question: str, as_of: date) -> list[str]:
        """The plain llama-index VectorStoreIndex retriever over the same Chroma collections (one a month)
        and model: each month up to the as-of date searched, the nearest passages of all of them kept."""
        if self._dense is None:
            from llama_index.core import QueryBundle, VectorStoreIndex
            from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
            from llama_index.vector_stores.chroma import ChromaVectorStore

            indexes: dict[str, VectorStoreIndex] = {}

            def dense(text: str, day: date) -> list[str]:
                filters = MetadataFilters(
                    filters=[
                        MetadataFilter(key="published_ts", value=_end_of(day), operator=FilterOperator.LTE)
                    ]
                )
                months = [p for p in self.store.periods() if p == UNDATED or p <= f"{day:%Y-%m}"]
                asked = QueryBundle(text, embedding=self.embedder.get_query_embedding(text))
                nodes = []
                for month, collection in self.store.collections(months).items():
                    if month not in indexes:
                        indexes[month] = VectorStoreIndex.from_vector_store(
                            ChromaVectorStore(chroma_collection=collection), embed_model=self.embedder
                        )
                    retriever = indexes[month].as_retriever(similarity_top_k=DEPTH, filters=filters)
                    nodes += retriever.retrieve(asked)
                nodes.sort(key=lambda node: node.score or 0.0, reverse=True)
                return rank_articles([str(node.metadata["article_id"]) for node in nodes[:DEPTH]])

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
    config: RetrievalConfig,
    retriever: str = "newsdesk",
    k: int = 10,
    answering: AnswerConfig | None = None,
    stories: StoryConfig | None = None,
) -> Iterator[Outcome]:
    """Ask every question and yield what it got."""
    ranker = Ranker(retriever, store=store, embedder=embedder, config=config)
    for question in questions:
        ranked, retrieval = ranker.rank(question)
        gold_rank, gold_found = score(question, ranked, k=k)
        answer: str | None = None
        sources: Sources | None = None
        if answerer is not None and retrieval is not None:
            answer, sources = _answer(
                answerer, question, retrieval, store=store, answering=answering, stories=stories
            )
        cited = [c.passage.article_id for c in sources.citations] if sources else []
        checks = sources.checks if sources else ()
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
            first_sentence_contains=(
                None if answer is None else contains_answer(first_sentence(answer), question.answers)
            ),
            sentences=len(checks),
            cited_sentences=sum(1 for c in checks if c.citations),
            supported_cited=sum(1 for c in checks if c.citations and c.supported),
            unsupported=sum(1 for c in checks if not c.supported),
            refused=None if answer is None else is_refusal(answer),
            warned=None if sources is None else sources.stale is not None,
        )


def _answer(
    answerer: Answerer,
    question: Question,
    retrieval: Retrieval,
    *,
    store: Store,
    answering: AnswerConfig | None,
    stories: StoryConfig | None,
) -> tuple[str, Sources]:
    """Answer as `python -m rag ask` does (`answer_from`), collecting the text and the sources."""
    text: list[str] = []
    sources = Sources([], 0, getattr(answerer, "mode", ""))
    events = answer_from(
        question.question, retrieval, as_of=question.as_of, store=store, answerer=answerer, stories=stories,
        answering=answering,
    )  # fmt: skip
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, Revised):
            text = [event.text]
        elif isinstance(event, Sources):
            sources = event
    return "".join(text), sources


def before_the_news(questions: Sequence[Question], store: Store) -> list[Question]:
    """The questions asked the day before their earliest stored gold article was published, when the
    corpus cannot answer them yet (questions without a dated gold article in the store are left out)."""
    catalog = store.articles()
    moved = []
    for question in questions:
        days = [
            date.fromisoformat(catalog[g].published_at[:10])  # type: ignore[index]
            for g in question.gold
            if g in catalog and catalog[g].published_at
        ]
        if days:
            moved.append(replace(question, as_of=min(days) - timedelta(days=1)))
    return moved


def render_table(
    figures: dict[str, float | int],
    spans: dict[str, tuple[float, float]],
    *,
    retriever: str,
    mode: str | None,
) -> str:
    """The figures, each with its 95% interval, as a small Markdown table."""
    rows = [
        f"| {key} | {value} | {spans[key][0]:.3f}–{spans[key][1]:.3f} |"
        if key in spans
        else f"| {key} | {value} | |"
        for key, value in figures.items()
    ]
    title = f"retriever: {retriever}" + (f", answerer: {mode}" if mode else "")
    return "\n".join([title, "", "| figure | value | 95% interval |", "|---|---:|---:|", *rows])


def render_changes(changes: dict[str, tuple[float, float, float]], *, against: Path) -> str:
    """The paired differences from an earlier run, marking those whose interval excludes zero."""
    rows = [
        f"| {key} | {mean:+.4f} | {low:+.3f} to {high:+.3f} |{' clear' if low > 0 or high < 0 else ''}"
        for key, (mean, low, high) in changes.items()
    ]
    return "\n".join(
        [f"change from {against}", "", "| figure | change | 95% interval |", "|---|---:|---:|", *rows]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="bench/evaluate.py",
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
    parser.add_argument(
        "--set",
        dest="assignments",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="change a retrieval or answer setting for this run (e.g. recent_floor=0.5; repeatable); "
        "the names are those of RetrievalConfig and AnswerConfig in rag/config.py",
    )
    parser.add_argument(
        "--answerer",
        choices=("default", "offline", "chat"),
        default="default",
        help="offline (extractive), chat (the OpenAI-compatible model of OPENAI_BASE_URL or OPENAI_API_KEY), "
        "or default: chat when one is configured, else offline",
    )
    parser.add_argument(
        "--unanswerable",
        action="store_true",
        help="ask each question as of the day before its earliest gold article, when nothing that answers "
        "it was published yet: measures how often each answerer declines",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="RANKS",
        help="an earlier run's --out file: print each figure's paired change from it, with its interval",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Ingest the corpus into the evaluation's store, ask every question, print the figures."""
    args = parse_args(argv)
    name = re.sub(r"(\.jsonl)?(\.gz)?$", "", args.corpus[0].name) or "corpus"
    try:
        questions = read_questions(args.questions, limit=args.limit)
        earlier = read_outcomes(args.against) if args.against else None
        # Always an embedded store of its own, so an evaluation never mixes with a Chroma server's articles.
        config: Settings = with_overrides(
            load_settings(
                data_dir=args.store or Path("data") / "eval" / name, CHROMA_HOST=None, CHROMA_PORT=None
            ),
            args.assignments,
        )
    except (OSError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    embedder = embedding_model_for(config)
    if args.answerer == "chat" and not (config.openai_base_url or config.openai_api_key):
        print("error: --answerer chat needs OPENAI_BASE_URL (or OPENAI_API_KEY)", file=sys.stderr)
        return 2
    answerer = ExtractiveAnswerer(config.answer) if args.answerer == "offline" else answerer_for(config)
    started = time.perf_counter()
    try:
        with open_store(config) as store:
            summary = ingest_paths(args.corpus, config=config, store=store, embedder=lambda: embedder)
            print(summary.render(), file=sys.stderr)
            if args.unanswerable:
                questions = before_the_news(questions, store)
            outcomes = list(
                evaluate(
                    questions,
                    store=store,
                    embedder=embedder,
                    answerer=answerer,
                    config=config.retrieval,
                    retriever=args.retriever,
                    k=args.k,
                    answering=config.answer,
                    stories=config.stories,
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
    figures, spans = summarize(outcomes, k=args.k), intervals(outcomes, k=args.k)
    mode = getattr(answerer, "mode", None) if args.retriever == "newsdesk" else None
    print(render_table(figures, spans, retriever=args.retriever, mode=mode))
    line: dict[str, object] = {"retriever": args.retriever, "k": args.k, "set": args.assignments, **figures}
    line["ci95"] = spans
    if earlier is not None:
        changes = differences(outcomes, earlier, k=args.k)
        print("\n" + render_changes(changes, against=args.against))
        line["change"] = changes
    print(f"({len(outcomes)} questions in {time.perf_counter() - started:.1f} s, store {config.data_dir})")
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
