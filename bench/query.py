"""Benchmark question time: hybrid retrieval and the extractive answer, on stores of 1,000 and 5,000 articles.

    .venv/bin/python bench/query.py [--sizes 1000 5000] [--questions 100] [--stores data/bench]
    .venv/bin/python bench/query.py --store data/eval/rtqa2022_retrieval_corpus [--set NAME=VALUE ...]
        [--postgres-store DIR --database-url postgresql://...]

Stores are built from ../shared/eval/realtimeqa/rtqa2022_retrieval_corpus.jsonl.gz (the articles that answer
the questions first, then the rest in corpus order; that corpus holds 4,968 articles, so "5000" is all of it)
with Newsdesk's own incremental ingest, and kept under --stores, so only the first run pays for embedding.
Questions come from dev_questions.jsonl, each asked with its question_date as the as-of date. The baseline
in the same run is Chroma's vector search alone (the query embedding included), the search a plain Chroma +
llama-index setup does. `--store` measures a store built already (the evaluation's store of the whole
2022 corpus is the 5,000 store), and `--set` changes retrieval settings as `bench/evaluate.py --set` does.
`--postgres-store DIR --database-url URL` measures, in the same run and question by question in turn, the
same store with its catalog in PostgreSQL (copied there by `python -m ingest --copy-catalog-to URL`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval" / "realtimeqa"

from ingest.pipeline import ingest_paths  # noqa: E402
from rag.answer import ExtractiveAnswerer  # noqa: E402
from rag.config import Settings, with_overrides  # noqa: E402
from rag.conversation import answer_from  # noqa: E402
from rag.embeddings import MiniLMEmbedding  # noqa: E402
from rag.reader import default_reader  # noqa: E402
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


def measure(
    configs: dict[str, Settings], questions: list[dict[str, object]], model: MiniLMEmbedding
) -> dict[str, dict[str, float]]:
    """Time retrieval, the extractive answer and the vector-only baseline for every question, in every store
    (each question asked of one store after the other, so the stores share whatever else the machine does)."""
    times = {name: {"retrieval": [], "answer": [], "answer with stories": [], "vector only": []}
             for name in configs}  # type: ignore[var-annotated]  # fmt: skip
    hits = {name: {"hybrid": 0, "vector only": 0} for name in configs}
    with ExitStack() as opened:
        stores = {name: opened.enter_context(open_store(config)) for name, config in configs.items()}
        for name, store in stores.items():
            retrieve(Query("warm up", as_of=_as_of(questions[0])), store=store, embedder=model,
                     config=configs[name].retrieval)  # fmt: skip
        for question in questions:
            text, gold = str(question["question"]), set(question["gold_doc_ids"])  # type: ignore[call-overload]
            for name, store in stores.items():
                config = configs[name]
                started = time.perf_counter()
                found = retrieve(Query(text, as_of=_as_of(question)), store=store, embedder=model,
                                 config=config.retrieval)  # fmt: skip
                middle = time.perf_counter()
                list(ExtractiveAnswerer(config.answer).answer(text, found.passages, as_of=_as_of(question)))
                times[name]["retrieval"].append(middle - started)
                times[name]["answer"].append(time.perf_counter() - middle)
                # As the app answers: checked, one source per article, with its story's other reports,
                # where the reports differ, and how often its article was updated.
                middle = time.perf_counter()
                answerer = ExtractiveAnswerer(config.answer)
                list(answer_from(text, found, as_of=_as_of(question), store=store, answerer=answerer,
                                 stories=config.stories))  # fmt: skip
                times[name]["answer with stories"].append(time.perf_counter() - middle)

                started = time.perf_counter()
                vector = store.vector_search(model.get_query_embedding(text), k=6)
                times[name]["vector only"].append(time.perf_counter() - started)
                hits[name]["hybrid"] += bool(gold & {p.article_id for p in found.passages})
                hits[name]["vector only"] += bool(gold & {h.article_id for h in vector})
        stored = {name: len(store.articles()) for name, store in stores.items()}
    results = {}
    for name in configs:
        figures = {"articles": float(stored[name])}
        for part, values in times[name].items():
            figures[f"{part} p50 ms"] = 1000 * statistics.median(values)
            figures[f"{part} p95 ms"] = 1000 * percentile(values, 0.95)
        figures["hybrid recall@6"] = hits[name]["hybrid"] / len(questions)
        figures["vector-only recall@6"] = hits[name]["vector only"] / len(questions)
        results[name] = figures
    return results


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
    parser.add_argument(
        "--postgres-store",
        type=Path,
        metavar="DIR",
        help="also measure this store, its catalog in PostgreSQL (--database-url), in the same run",
    )
    parser.add_argument("--database-url", help="the PostgreSQL catalog of --postgres-store")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if not EVAL.exists():
        raise SystemExit(f"{EVAL} not found: this benchmark reads ../shared/eval/realtimeqa/")

    questions = load_questions(args.questions)
    model = MiniLMEmbedding()
    configs: dict[str, Settings] = {}
    if args.store:
        configs["SQLite"] = Settings(data_dir=args.store)
    else:
        configs = {f"{size}": build_store(size, questions, args.stores, model) for size in args.sizes}
    if args.postgres_store:
        if not args.database_url:
            raise SystemExit("--postgres-store needs --database-url (its catalog)")
        configs["PostgreSQL"] = Settings(data_dir=args.postgres_store, database_url=args.database_url)
    configs = {name: with_overrides(config, args.assignments) for name, config in configs.items()}
    if args.build_only:
        return
    results = measure(configs, questions, model)
    names = [name for name in next(iter(results.values())) if name != "articles"]
    scored = default_reader().calls / (2 * len(questions) * len(results))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(questions)} questions from dev_questions.jsonl; times per question, 2 cores; the answer "
          f"includes the reader ({scored:.1f} sentences scored per answer); peak RSS {peak:.0f} MB\n")
    print("| store | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, figures in results.items():
        cells = [f"{figures[n]:.2f}" if "recall" in n else f"{figures[n]:.1f}" for n in names]
        catalog = f", {label} catalog" if label in ("SQLite", "PostgreSQL") else ""
        print(f"| {int(figures['articles']):,} articles{catalog} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
