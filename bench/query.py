"""Benchmark question time: hybrid retrieval and the extractive answer, on stores of 1,000 and 5,000 articles.

    .venv/bin/python bench/query.py [--sizes 1000 5000] [--questions 100] [--stores data/bench]
    .venv/bin/python bench/query.py --store data/eval/rtqa2022_retrieval_corpus [--set NAME=VALUE ...]

Stores are built from ../shared/eval/realtimeqa/rtqa2022_retrieval_corpus.jsonl.gz (the articles that answer
the questions first, then the rest in corpus order; that corpus holds 4,968 articles, so "5000" is all of it)
with Newsdesk's own incremental ingest, and kept under --stores, so only the first run pays for embedding.
Questions come from dev_questions.jsonl, each asked with its question_date as the as-of date. The baseline
in the same run is Chroma's vector search alone (the query embedding included), the search a plain Chroma +
llama-index setup does. `--store` measures a store built already (the evaluation's store of the whole
2022 corpus is the 5,000 store), and `--set` changes retrieval settings as `bench/evaluate.py --set` does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval" / "realtimeqa"

from ingest.pipeline import ingest_paths  # noqa: E402
from rag.answer import ExtractiveAnswerer  # noqa: E402
from rag.config import Settings, with_overrides  # noqa: E402
from rag.embeddings import MiniLMEmbedding  # noqa: E402
from rag.retrieve import Query, retrieve  # noqa: E402
from rag.store import open_store  # noqa: E402


def load_questions(count: int) -> list[dict[str, object]]:
    with (EVAL / "dev_questions.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines][:count]


def write_corpus(size: int, questions: list[dict[str, object]], target: Path) -> None:
    """Write `size` articles: those that answer the questions first, then the rest in corpus order."""
    gold = {doc for q in questions for doc in q["gold_doc_ids"]}  # type: ignore[attr-defined]
    with gzip.open(EVAL / "rtqa2022_retrieval_corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    chosen = [r for r in records if r["doc_id"] in gold]
    chosen += [r for r in records if r["doc_id"] not in gold][: max(0, size - len(chosen))]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(r) + "\n" for r in chosen[:size]), encoding="utf-8")


def build_store(
    size: int, questions: list[dict[str, object]], folder: Path, model: MiniLMEmbedding
) -> Settings:
    """Ingest the corpus of this size (a no-op when the store is already built)."""
    corpus = folder / f"articles-{size}.jsonl"
    if not corpus.exists():
        write_corpus(size, questions, corpus)
    config = Settings(data_dir=folder / f"store-{size}")
    started = time.perf_counter()
    with open_store(config) as store:
        summary = ingest_paths([corpus], config=config, store=store, embedder=lambda: model)
    print(
        f"store of {size}: {summary.render().splitlines()[0]} ({time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )
    return config


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(config: Settings, questions: list[dict[str, object]], model: MiniLMEmbedding) -> dict[str, float]:
    """Time retrieval, the extractive answer and the vector-only baseline for every question."""
    answerer = ExtractiveAnswerer(config.answer)
    times: dict[str, list[float]] = {"retrieval": [], "answer": [], "vector only": []}
    hits = {"hybrid": 0, "vector only": 0}
    with open_store(config) as store:
        search = partial(retrieve, store=store, embedder=model, config=config.retrieval)
        search(Query("warm up", as_of=_as_of(questions[0])))
        for question in questions:
            text, gold = str(question["question"]), set(question["gold_doc_ids"])  # type: ignore[call-overload]
            started = time.perf_counter()
            found = search(Query(text, as_of=_as_of(question)))
            middle = time.perf_counter()
            list(answerer.answer(text, found.passages, as_of=_as_of(question)))
            times["retrieval"].append(middle - started)
            times["answer"].append(time.perf_counter() - middle)

            started = time.perf_counter()
            vector = store.vector_search(model.get_query_embedding(text), k=6)
            times["vector only"].append(time.perf_counter() - started)
            hits["hybrid"] += bool(gold & {p.article_id for p in found.passages})
            hits["vector only"] += bool(gold & {h.article_id for h in vector})
    with open_store(config) as store:
        stored = len(store.articles())
    figures = {"articles": float(stored)}
    for name, values in times.items():
        figures[f"{name} p50 ms"] = 1000 * statistics.median(values)
        figures[f"{name} p95 ms"] = 1000 * percentile(values, 0.95)
    figures["hybrid recall@6"] = hits["hybrid"] / len(questions)
    figures["vector-only recall@6"] = hits["vector only"] / len(questions)
    return figures


def _as_of(question: dict[str, object]):  # type: ignore[no-untyped-def]
    from datetime import date

    return date.fromisoformat(str(question["question_date"])[:10].replace("/", "-"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--stores", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--build-only", action="store_true", help="build the stores and stop")
    parser.add_argument("--store", type=Path, help="measure this store, built already, instead")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if not EVAL.exists():
        raise SystemExit(f"{EVAL} not found: this benchmark reads ../shared/eval/realtimeqa/")

    questions = load_questions(args.questions)
    model = MiniLMEmbedding()
    if args.store:
        configs = {0: Settings(data_dir=args.store)}
    else:
        configs = {size: build_store(size, questions, args.stores, model) for size in args.sizes}
    configs = {size: with_overrides(config, args.assignments) for size, config in configs.items()}
    if args.build_only:
        return
    results = {size: measure(config, questions, model) for size, config in configs.items()}
    names = [name for name in next(iter(results.values())) if name != "articles"]
    print(f"{len(questions)} questions from dev_questions.jsonl; times per question, 2 cores\n")
    print("| store | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for figures in results.values():
        cells = [f"{figures[n]:.2f}" if "recall" in n else f"{figures[n]:.1f}" for n in names]
        print(f"| {int(figures['articles']):,} articles | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
