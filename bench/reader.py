"""How often each way of picking a sentence picks one that answers: the shipped reader beside word overlap and
MiniLM similarity, given the right text.

    .venv/bin/python bench/reader.py [--shared ../shared] [--limit N] [--model-dir rag/models]

Three tests, none trained on:
- SQuAD v1.1 `squad11_dev_half_b`: the paragraph's sentences; right when the pick holds the answer span.
- Both development sets' gold articles (each question's first gold article in its corpus whose headline or
  sentences hold the answer): the article's headline and sentences; right when the pick holds the answer.
Prints top-1 accuracy with a 95% Wilson interval for each method, and the reader's time per pair.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.answer import HEADLINE, ExtractiveAnswerer
from rag.config import load_settings, with_overrides
from rag.documents import Passage
from rag.embeddings import MiniLMEmbedding
from rag.reader import Reader
from rag.sentences import holds_answer, sentences, stems

Case = tuple[str, list[str], list[bool]]  # question, candidate sentences, which of them answer
Picker = Callable[[str, Sequence[str]], int]

DEV_SETS = {
    "2022": ("dev_questions.jsonl", "rtqa2022_retrieval_corpus.jsonl.gz"),
    "2023-2024": ("rtqa2023_2024_recent_dev_questions.jsonl", "rtqa2023_2026_answer_corpus.jsonl.gz"),
}


def squad_cases(path: Path, limit: int | None) -> list[Case]:
    """Each SQuAD question with its paragraph's sentences, the one holding the answer span marked."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    cases: list[Case] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            spans = sentences(paragraph["context"])
            if len(spans) < 2:
                continue
            said = [paragraph["context"][a:b] for a, b in spans]
            for qa in paragraph["qas"]:
                start = qa["answers"][0]["answer_start"]
                cases.append((qa["question"], said, [a <= start < b for a, b in spans]))
    return cases[:limit]


def news_cases(questions: Path, corpus: Path, limit: int | None) -> list[Case]:
    """Each answerable question with its first gold article's headline (first) and sentences."""
    records = [json.loads(line) for line in questions.read_text("utf-8").splitlines() if line.strip()]
    wanted = {g for r in records for g in r["gold_doc_ids"]}
    articles: dict[str, list[str]] = {}
    with gzip.open(corpus, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["doc_id"] in wanted:
                text = record.get("text") or ""
                title = record.get("title") or ""
                articles[record["doc_id"]] = [title] + [text[a:b] for a, b in sentences(text)]
    cases: list[Case] = []
    for record in records:
        answers = (
            record["answer_text"] if isinstance(record["answer_text"], list) else [record["answer_text"]]
        )
        for gold in record["gold_doc_ids"]:
            said = articles.get(gold, [])
            right = [holds_answer(s, answers) for s in said]
            if any(right):
                cases.append((record["question"], said, right))
                break
    return cases[:limit]


def by_words(question: str, said: Sequence[str]) -> int:
    """The sentence sharing most of the question's stemmed words (the first of equals)."""
    wanted = stems(question)
    return int(np.argmax([len(wanted & stems(s)) for s in said]))


def by_similarity(embedder: MiniLMEmbedding) -> Picker:
    def pick(question: str, said: Sequence[str]) -> int:
        asked = np.asarray(embedder.get_query_embedding(question))
        return int(np.argmax(np.asarray(embedder.embed(list(said))) @ asked))

    return pick


def by_reader(reader: Reader) -> Picker:
    return lambda question, said: int(np.argmax(reader.score(question, said)))


def by_answerer(answerer: ExtractiveAnswerer, *, titled: bool) -> Picker:
    """The sentence the offline answer leads with, given the sentences as one article (the first as its
    headline when `titled`)."""

    def pick(question: str, said: Sequence[str]) -> int:
        title, body = (said[0], said[1:]) if titled else (None, said)
        text = "\n".join(body)
        article = Passage("a::0", "a", text, title, None, None, None, None, 0, len(text), 1.0)
        chosen = answerer._choose(question, [article])
        if not chosen:
            return -1
        span = chosen[0][1]
        quoted = title if span == HEADLINE else text[span[0] : span[1]]
        return list(said).index(quoted) if quoted in said else -1

    return pick


def wilson(right: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a share."""
    if not n:
        return 0.0, 0.0
    p, z = right / n, 1.96
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def accuracy(cases: Sequence[Case], pick: Picker) -> tuple[float, float, float]:
    right = sum((n := pick(case[0], case[1])) >= 0 and case[2][n] for case in cases)
    low, high = wilson(right, len(cases))
    return right / max(len(cases), 1), low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/reader.py", description="Top-1 sentence accuracy by method.")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--limit", type=int, help="at most N questions of each test")
    parser.add_argument(
        "--model-dir", type=Path, help="a reader other than the shipped one (reader.onnx + .json)"
    )
    parser.add_argument("--methods", default="words,similarity,reader,answer")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change an answer setting of the `answer` method (e.g. answer.word_weight=2)",
    )
    args = parser.parse_args(argv)
    eval_dir = args.shared / "eval"
    if not eval_dir.is_dir():
        print(
            f"error: {eval_dir} not found (the tests read SQuAD and RealTimeQA from there)", file=sys.stderr
        )
        return 2
    tests = {"SQuAD dev half b": squad_cases(eval_dir / "squad" / "squad11_dev_half_b.json.gz", args.limit)}
    for name, (questions, corpus) in DEV_SETS.items():
        tests[f"{name} gold articles"] = news_cases(
            eval_dir / "realtimeqa" / questions, eval_dir / "realtimeqa" / corpus, args.limit
        )
    reader = Reader(args.model_dir) if args.model_dir else Reader()
    pickers: dict[str, Picker] = {
        "words": by_words,
        "similarity": by_similarity(MiniLMEmbedding()),
        "reader": by_reader(reader),
    }
    settings = with_overrides(load_settings(), args.assignments)
    answerer = ExtractiveAnswerer(settings.answer, reader=reader)
    chosen = [m for m in args.methods.split(",") if m in [*pickers, "answer"]]
    print("| test | questions | " + " | ".join(chosen) + " |")
    print("|---|---:|" + "---:|" * len(chosen))
    for name, cases in tests.items():
        cells = []
        for method in chosen:
            started = time.perf_counter()
            titled = not name.startswith("SQuAD")
            pick = by_answerer(answerer, titled=titled) if method == "answer" else pickers[method]
            share, low, high = accuracy(cases, pick)
            cells.append(f"{share:.3f} [{low:.3f}, {high:.3f}]")
            if method == "reader":
                pairs = sum(len(c[1]) for c in cases)
                print(f"(reader: {pairs} pairs in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
        print(f"| {name} | {len(cases)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
