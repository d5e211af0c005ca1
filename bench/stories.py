"""Measure story grouping on a labelled sample: precision and recall of same-story and near-copy pairs.

    .venv/bin/python bench/stories.py [--set stories.same_story=0.8 ...] [--sweep]

`bench/story_labels.jsonl` names 210 seed articles of ../shared/corpora/rtqa_news_articles_2022_2026.jsonl.gz
(30 from each of November 2022 and March 2024, 50 from each of April 2023, January 2025 and June 2025, drawn
at random) and, for each, every article of the corpus
published within 7 days of it that reports the same story, and which of those are near copies, labelled by
reading them. The articles of those months (and 10 days around them) are split and their passages embedded
as ingest does (the first passage's vector and the whole article's kept in data/bench/, so a sweep embeds
once), then grouped by
`ingest.stories.StoryIndex` in publish order, as a first ingest would. A pair (seed, other article) counts:
grouped and labelled (true positive), grouped only (false positive), labelled only (missed). Figures are
micro-averaged over the seeds' pairs, with 95% bootstrap intervals over the seeds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import re
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "rtqa_news_articles_2022_2026.jsonl.gz"
LABELS = ROOT / "bench" / "story_labels.jsonl"
VECTORS = ROOT / "data" / "bench" / "story_lead_vectors.npz"
BODIES = ROOT / "data" / "bench" / "story_body_vectors.npz"
SCOPE_DAYS = 7  # how far from its seed an article was looked for when labelling


def load_articles(corpus: Path, labels: list[dict]) -> list[dict]:
    """The corpus articles published within SCOPE_DAYS + 3 days of the labelled months."""
    months = {label["slice"] for label in labels}
    spans = []
    for month in months:
        first = date.fromisoformat(month + "-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        spans.append((first - timedelta(days=SCOPE_DAYS + 3), last + timedelta(days=SCOPE_DAYS + 3)))
    kept = []
    with gzip.open(corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            day = _day(record.get("publish_date"))
            if day and any(a <= day <= b for a, b in spans) and record.get("text"):
                record["day"] = day
                kept.append(record)
    return kept


def _day(text: str | None) -> date | None:
    try:
        return datetime.strptime(text[:10], "%Y/%m/%d").date() if text else None
    except ValueError:
        return None


def prepare(records: list[dict], config) -> tuple[list[list[str]], np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Split each article as ingest does and embed its passages: the first passage's vector (headline and
    lead) and the whole article's (the unit mean of its passages' unit vectors), both cached."""
    from ingest.chunks import embedding_text, make_splitter, split_article
    from rag.documents import Article
    from rag.embeddings import embedding_model_for

    splitter = make_splitter(config)
    articles = [Article(r["doc_id"], r["text"], r["doc_id"], title=r.get("title")) for r in records]
    pieces = [split_article(a, splitter) for a in articles]
    ids = [r["doc_id"] for r in records]
    leads, bodies = _cached(VECTORS), _cached(BODIES)
    missing = [i for i, article_id in enumerate(ids) if article_id not in leads or article_id not in bodies]
    if missing:
        model = embedding_model_for(config)
        started = time.perf_counter()
        for i in missing:
            found = model.get_text_embedding_batch([embedding_text(articles[i], p) for p in pieces[i]])
            units = [np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for v in found]
            leads[ids[i]], bodies[ids[i]] = units[0], np.mean(units, axis=0)
        print(f"embedded {len(missing)} articles in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for path, cached in ((VECTORS, leads), (BODIES, bodies)):
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, ids=np.asarray(list(cached)), vectors=np.stack(list(cached.values())))
    lead = np.stack([leads[article_id] for article_id in ids])
    body = np.stack([bodies[article_id] for article_id in ids])  # (cached as the mean of unit vectors)
    return [[c.text for c in p] for p in pieces], lead, body / np.linalg.norm(body, axis=1, keepdims=True)


def _cached(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as stored:
        return dict(zip(stored["ids"].tolist(), stored["vectors"], strict=True))


def group(
    records: list[dict], passages: list[list[str]], vectors: np.ndarray, bodies: np.ndarray, stories
) -> tuple[dict, float]:  # type: ignore[no-untyped-def]
    """Group the articles in publish order; return {article id: (story id, copy root)} and seconds taken."""
    from ingest.stories import StoryIndex
    from rag.documents import is_digest

    index = StoryIndex(stories, _NothingStored())
    order = sorted(range(len(records)), key=lambda i: (records[i]["day"], records[i]["doc_id"]))
    grouped = {}
    for i in order:
        link = index.assign(
            records[i]["doc_id"],
            published=records[i]["day"],
            passages=passages[i],
            lead_vector=vectors[i],
            passage_vectors=[bodies[i]],  # (the unit mean of the passages' unit vectors: the article's own)
            digest=is_digest(records[i].get("title")),
        )
        grouped[records[i]["doc_id"]] = (link.story_id, link.copy_of or records[i]["doc_id"])
    return grouped, index.seconds


class _NothingStored:
    """Grouping measured alone: no article is stored before the sample."""

    def story_members(self, days):  # type: ignore[no-untyped-def]
        return []

    def story_members_of(self, article_ids):  # type: ignore[no-untyped-def]
        return []

    def article_vectors(self, article_ids):  # type: ignore[no-untyped-def]
        return {}


Counts = dict[str, Any]  # "story" and "copy": (true positive, false positive, missed); "slice": the month


def pair_counts(labels: list[dict], records: list[dict], grouped: dict) -> list[Counts]:
    """Per seed: (true positive, false positive, missed) pairs for stories and for near copies."""
    day = {r["doc_id"]: r["day"] for r in records}
    counts = []
    for label in labels:
        seed = label["seed"]
        if seed not in grouped:
            continue
        near = [a for a in grouped if a != seed and abs((day[a] - day[seed]).days) <= SCOPE_DAYS]
        story = {a for a in near if grouped[a][0] == grouped[seed][0]}
        copies = {a for a in near if grouped[a][1] == grouped[seed][1]}
        result = {}
        for name, found, truth in (
            ("story", story, set(label["same_story"])),
            ("copy", copies, set(label["near_copies"])),
        ):
            result[name] = (len(found & truth), len(found - truth), len(truth - found))
        counts.append({**result, "slice": label["slice"]})
    return counts


def figures(counts: list[Counts], kind: str) -> dict[str, object]:
    def pr(sample: list[Counts]) -> tuple[float, float]:
        tp = sum(c[kind][0] for c in sample)
        fp = sum(c[kind][1] for c in sample)
        fn = sum(c[kind][2] for c in sample)
        return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)

    precision, recall = pr(counts)
    rng = random.Random(0)
    draws = [pr([rng.choice(counts) for _ in counts]) for _ in range(1000)]
    ci = [np.percentile([d[i] for d in draws], [2.5, 97.5]).round(3).tolist() for i in (0, 1)]
    pairs = sum(c[kind][0] + c[kind][2] for c in counts)
    return {"precision": round(precision, 3), "precision_ci95": ci[0], "recall": round(recall, 3),
            "recall_ci95": ci[1], "labelled_pairs": pairs}  # fmt: skip


def ceiling(labels: list[dict], records: list[dict], vectors: np.ndarray, bodies: np.ndarray) -> dict:
    """What any threshold on one pair score could reach, grouping aside: every (seed, article within
    SCOPE_DAYS) pair ordered by the score, and the recall kept while precision stays at or above 0.9 and
    0.8. Scores: cosine of headline-and-lead vectors, of whole-article vectors, their mean, and the cosine
    of the articles' word TF-IDF vectors (document frequencies of the sample)."""
    at = {r["doc_id"]: i for i, r in enumerate(records)}
    texts = [((r.get("title") or "") + " " + r["text"]).lower() for r in records]
    words = [Counter(w for w in re.findall(r"\w+", text) if len(w) > 2) for text in texts]
    frequency = Counter(w for counted in words for w in counted)
    weighted = []
    for counted in words:
        v = {w: (1 + math.log(n)) * math.log(len(words) / frequency[w]) for w, n in counted.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        weighted.append({w: x / norm for w, x in v.items()})
    scores: dict[str, list[float]] = {"lead": [], "whole": [], "mean of both": [], "tf-idf": []}
    truth = []
    for label in labels:
        s = at.get(label["seed"])
        if s is None:
            continue
        same = set(label["same_story"])
        for j, record in enumerate(records):
            if j == s or abs((record["day"] - records[s]["day"]).days) > SCOPE_DAYS:
                continue
            lead, body = float(vectors[s] @ vectors[j]), float(bodies[s] @ bodies[j])
            small, large = sorted((weighted[s], weighted[j]), key=len)
            scores["lead"].append(lead)
            scores["whole"].append(body)
            scores["mean of both"].append((lead + body) / 2)
            scores["tf-idf"].append(sum(x * large.get(w, 0.0) for w, x in small.items()))
            truth.append(record["doc_id"] in same)
    labelled = np.asarray(truth)
    result = {}
    for name, values in scores.items():
        order = np.argsort(-np.asarray(values), kind="stable")
        found = np.cumsum(labelled[order])
        precision, recall = found / np.arange(1, len(order) + 1), found / labelled.sum()
        result[name] = {f"recall at precision {p}": round(float(recall[precision >= p].max(initial=0)), 3)
                        for p in (0.9, 0.8)}  # fmt: skip
    return {"pairs": len(truth), "labelled": int(labelled.sum()), "ceiling": result}


def main(argv: list[str] | None = None) -> int:
    from rag.config import Settings, with_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sweep", action="store_true", help="also try other thresholds and windows")
    parser.add_argument(
        "--ceiling", action="store_true", help="what a threshold on one pair score could reach"
    )
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    config = with_overrides(Settings(), args.set)
    labels = [json.loads(line) for line in args.labels.open(encoding="utf-8")]
    records = load_articles(args.corpus, labels)
    passages, vectors, bodies = prepare(records, config)
    print(f"{len(records)} articles, {len(labels)} labelled seeds")
    if args.ceiling:
        print(json.dumps(ceiling(labels, records, vectors, bodies)))
    variants = [config.stories]
    if args.sweep:
        variants += [
            config.stories.model_copy(update={"same_story": s, "same_story_body": b, "window_days": w})
            for s in (0.75, 0.8, 0.85, 1.0)
            for b in (0.8, 0.85, 0.9, 1.0)
            for w in (3, 7)
        ]
    for stories in variants:
        grouped, seconds = group(records, passages, vectors, bodies, stories)
        counts = pair_counts(labels, records, grouped)
        result = {
            "same_story": stories.same_story,
            "same_story_body": stories.same_story_body,
            "near_copy": stories.near_copy,
            "window_days": stories.window_days,
            "stories": figures(counts, "story"),
            "near_copies": figures(counts, "copy"),
            "ms_per_article": round(1000 * seconds / len(records), 2),
            "by_month": {
                month: {k: v for k, v in figures([c for c in counts if c["slice"] == month], "story").items()}
                for month in sorted({c["slice"] for c in counts})
            },
        }
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
