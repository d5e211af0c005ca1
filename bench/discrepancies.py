"""Measure "Reports differ" on real answers: the discrepancies found in answers from an evaluation store,
checked against labels read by hand.

    .venv/bin/python bench/discrepancies.py --store data/eval/rtqa2022_retrieval_corpus \\
        --questions ../shared/eval/realtimeqa/dev_questions.jsonl --tolls 150 [--review FILE]

Two kinds of question are asked, as the app asks them (`rag.conversation.ask`, offline answerer): the
development questions, each as of its date, and "toll questions" made from the store's own articles: for
`--tolls N` articles drawn at random (`random.Random(7)`) among those whose passages give a count of
deaths, injuries, people missing, arrests or evacuations, "How many people were <killed> in: <headline>?" as
of a week after the article. Every discrepancy an answer carries is one detection: a quantity and its values
(outlet, date, article). `bench/discrepancy_labels.jsonl` labels detections (article URLs, the values and
whether they are one quantity of one event given differently, no article text): precision is the share of
labelled detections that are right, with a 95% Wilson interval. `--review FILE` writes each detection with
the sentences that give its values, for labelling.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LABELS = ROOT / "bench" / "discrepancy_labels.jsonl"
_VERB = {"dead": "killed", "injured": "injured", "missing": "missing", "arrested": "arrested",
         "evacuated": "evacuated"}  # fmt: skip


def toll_questions(store, count: int) -> list[tuple[str, date]]:  # type: ignore[no-untyped-def]
    """Questions about the counts the store's articles give (in any passage)."""
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
                asked.append(
                    (f"How many people were {_VERB[found[0].kind]} in: {title}?", day + timedelta(days=7))
                )
                if len(asked) == count:
                    return asked
    return asked


def detections(store, embedder, config, questions: list[tuple[str, date]]) -> list[dict]:  # type: ignore[no-untyped-def]
    from rag.answer import ExtractiveAnswerer
    from rag.conversation import ask
    from rag.discrepancies import mentions
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
                text = citation.passage.text
                marked = [text[a:b] for m in mentions(text) if m.written == v.written for a, b in [m.span]]
                values.append({"value": v.value, "written": v.written, "outlet": v.outlet,
                               "date": v.day.isoformat() if v.day else None,
                               "article": citation.passage.article_id, "title": citation.passage.title,
                               "sentence": marked[0] if marked else None})  # fmt: skip
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
    parser.add_argument("--store", type=Path, required=True, help="an evaluation store (bench/evaluate.py)")
    parser.add_argument("--questions", type=Path, help="development questions (JSON lines) to ask too")
    parser.add_argument("--tolls", type=int, default=150, help="toll questions made from the store")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--review", type=Path, help="write each detection with its sentences here")
    args = parser.parse_args(argv)

    from rag.config import load_settings
    from rag.embeddings import embedding_model_for
    from rag.store import open_store

    config = load_settings(data_dir=args.store, CHROMA_HOST=None, CHROMA_PORT=None)
    embedder = embedding_model_for(config)
    questions = []
    if args.questions:
        for line in args.questions.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            day = date.fromisoformat(record["question_date"].replace("/", "-"))
            questions.append((record["question"], day))
    with open_store(config) as store:
        tolls = toll_questions(store, args.tolls)
        questions += tolls
        found = detections(store, embedder, config, questions)
    unique = list({key(d): d for d in found}.values())
    if args.review:
        lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in unique)
        args.review.write_text(lines, encoding="utf-8")
    labels = {}
    if args.labels.exists():
        for line in args.labels.read_text(encoding="utf-8").splitlines():
            label = json.loads(line)
            labels[(label["quantity"], tuple(sorted((a, v) for a, v in label["values"])))] = label["right"]
    judged = [labels[key(d)] for d in unique if key(d) in labels]
    right = sum(judged)
    low, high = wilson(right, len(judged))
    precision = right / len(judged) if judged else 0.0
    print(f"{len(questions)} questions ({len(tolls)} toll questions), {len(unique)} discrepancies found, "
          f"{len(judged)} labelled: precision {precision:.3f} [{low:.3f}, {high:.3f}] "
          f"({right} right, {len(judged) - right} wrong, {len(unique) - len(judged)} new)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
