"""Measure "Reports differ" on real answers: the discrepancies found in answers from an evaluation store,
checked against labels read by hand.

    .venv/bin/python bench/discrepancies.py --store data/eval/rtqa2022_retrieval_corpus \\
        --questions ../shared/eval/realtimeqa/dev_questions.jsonl [--store ... --questions ...] \\
        --tolls 150 [--after 7 --after 14] [--review FILE]

Two kinds of question are asked, as the app asks them (`rag.conversation.ask`, offline answerer): the
development questions, each as of its date, and "toll questions" made from the store's own articles: for
`--tolls N` articles drawn at random (`random.Random(7)`) among those whose passages give a count of
deaths, injuries, people missing, arrests, evacuations or acres burned, "How many people were <killed> in:
<headline>?" (or "How many acres burned in: …") as of a week after the article (or the days `--after`
says). Every discrepancy an answer carries is one detection: a quantity and its values (outlet, date,
article). `bench/discrepancy_labels.jsonl` labels detections (article URLs, the values and whether they are
one quantity of one event given differently, no article text): precision is the share of labelled
detections that are right, with a 95% Wilson interval, for each store and for all the stores together (a
detection found in two stores counts once). `--review FILE` writes each detection with the sentences that
give its values, for labelling.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LABELS = ROOT / "bench" / "discrepancy_labels.jsonl"
_ASKED = {"dead": "How many people were killed in", "injured": "How many people were injured in",
          "missing": "How many people were missing in", "arrested": "How many people were arrested in",
          "evacuated": "How many people were evacuated in", "burned": "How many acres burned in"}  # fmt: skip


def toll_questions(store, count: int, after: list[int]) -> list[tuple[str, date]]:  # type: ignore[no-untyped-def]
    """Questions about the counts the store's articles give (in any passage), each asked `after` days
    after its article (for each of those days)."""
    from rag.discrepancies import mentions

    articles = [a for a in store.articles().values() if a.duplicate_of is None and a.title and a.published_at]
    random.Random(7).shuffle(articles)
    asked = []
    for start in range(0, len(articles), 500):
        batch = articles[start : start + 500]
        texts = store.passage_texts([a.article_id for a in batch])
        for article in batch:
            found = [m for text in texts.get(article.article_id, []) for m in mentions(text)]
            if found:
                title = " ".join(article.title.split())
                day = date.fromisoformat(article.published_at[:10])
                question = f"{_ASKED[found[0].kind]}: {title}?"
                asked += [(question, day + timedelta(days=days)) for days in after]
                if len(asked) >= count * len(after):
                    return asked
    return asked


def write_counts(corpus: Path, out: Path) -> int:
    """Copy the articles of a corpus whose first 1,500 characters give a count of a kind compared; return
    how many."""
    from rag.discrepancies import mentions

    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(corpus, "rt", encoding="utf-8") as lines, gzip.open(out, "wt", encoding="utf-8") as kept:
        for line in lines:
            if mentions((json.loads(line).get("text") or "")[:1500]):
                kept.write(line)
                written += 1
    return written


def detections(store, embedder, config, questions: list[tuple[str, date]]) -> list[dict]:  # type: ignore[no-untyped-def]
    from rag.answer import ExtractiveAnswerer
    from rag.conversation import ask
    from rag.events import Sources
    from rag.retrieve import Query

    found = []
    for question, as_of in questions:
        answerer = ExtractiveAnswerer(config.answer)
        turn = ask(Query(question, as_of=as_of), store=store, embedder=embedder, answerer=answerer,
                   config=config.retrieval, stories=config.stories)  # fmt: skip
        sources = next(e for e in turn.events if isinstance(e, Sources))
        cited = {c.number: c for c in sources.citations}
        for d in sources.discrepancies:
            values = []
            for v in d.values:
                citation = cited[v.citation]
                start, end = v.span  # (the sentence giving it)
                values.append({"value": v.value, "written": v.written, "outlet": v.outlet,
                               "date": v.day.isoformat() if v.day else None,
                               "article": citation.passage.article_id, "title": citation.passage.title,
                               "sentence": citation.passage.text[start:end]})  # fmt: skip
            found.append({"question": question, "as_of": as_of.isoformat(), "quantity": d.quantity,
                          "line": d.line, "values": values})  # fmt: skip
    return found


def key(detection: dict) -> tuple:  # type: ignore[type-arg]
    return (detection["quantity"], tuple(sorted((v["article"], v["value"]) for v in detection["values"])))


def wilson(right: int, total: int) -> tuple[float, float]:
    if not total:
        return (0.0, 1.0)
    p, z = right / total, 1.96
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store",
        type=Path,
        action="append",
        default=[],
        help="an evaluation store (bench/evaluate.py); again for more, scored together",
    )
    parser.add_argument(
        "--questions",
        type=Path,
        action="append",
        default=[],
        help="development questions (JSON lines) to ask too, of the --store in the same place",
    )
    parser.add_argument("--tolls", type=int, default=150, help="toll questions made from each store")
    parser.add_argument(
        "--after",
        type=int,
        action="append",
        help="days after its article a toll question is asked (again for more; default 7)",
    )
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--review", type=Path, help="write each detection with its sentences here")
    parser.add_argument("--write-counts", nargs=2, type=Path, metavar=("CORPUS", "OUT"),
                        help="write the articles of CORPUS (JSON lines, gzip) whose start gives a count to "
                        "OUT, for a store of them; then stop")  # fmt: skip
    args = parser.parse_args(argv)
    if args.write_counts:
        print(f"{write_counts(*args.write_counts)} articles written to {args.write_counts[1]}")
        return 0
    if not args.store:
        parser.error("give --store (or --write-counts)")

    from rag.config import load_settings
    from rag.embeddings import embedding_model_for
    from rag.store import open_store

    labels = {}
    if args.labels.exists():
        for line in args.labels.read_text(encoding="utf-8").splitlines():
            label = json.loads(line)
            labels[(label["quantity"], tuple(sorted((a, v) for a, v in label["values"])))] = label["right"]
    everything: dict[tuple, dict] = {}  # type: ignore[type-arg]
    for n, path in enumerate(args.store):
        config = load_settings(data_dir=path, CHROMA_HOST=None, CHROMA_PORT=None)
        embedder = embedding_model_for(config)
        questions = []
        if n < len(args.questions):
            for line in args.questions[n].read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                day = date.fromisoformat(record["question_date"].replace("/", "-"))
                questions.append((record["question"], day))
        with open_store(config) as store:
            tolls = toll_questions(store, args.tolls, args.after or [7])
            questions += tolls
            found = {key(d): d for d in detections(store, embedder, config, questions)}
        print(f"{path.name}: {len(questions)} questions ({len(tolls)} toll questions); "
              + score(found, labels))  # fmt: skip
        everything.update(found)
    if len(args.store) > 1:
        print("all stores: " + score(everything, labels))
    if args.review:
        lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in everything.values())
        args.review.write_text(lines, encoding="utf-8")
    return 0


def score(found: dict[tuple, dict], labels: dict[tuple, bool]) -> str:  # type: ignore[type-arg]
    """The detections found, how many are labelled, and the precision of those, with its interval."""
    judged = [labels[k] for k in found if k in labels]
    right = sum(judged)
    low, high = wilson(right, len(judged))
    precision = right / len(judged) if judged else 0.0
    wrong, new = len(judged) - right, len(found) - len(judged)
    return (f"{len(found)} discrepancies found, {len(judged)} labelled: precision {precision:.3f} "
            f"[{low:.3f}, {high:.3f}] ({right} right, {wrong} wrong, {new} new)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
