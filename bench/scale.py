"""Benchmark a growing archive: one store grown tier by tier from 5,000 to 1,000,000 articles.

    .venv/bin/python bench/scale.py [--tiers 5000,...,1000000] [--max N] [--data data/scale] [--plot PNG]

The first articles are real: the 2023-2026 evaluation corpus (so its questions can be asked of every tier),
then the rest of ../shared/corpora/rtqa_news_articles_2022_2026.jsonl.gz. Each is split as ingest splits it
and embedded once; its passages and vectors are kept in a cache (DATA/vectors.sqlite, never committed), filled
first from the evaluation stores already built (data/eval/*), so no tier embeds them again. Past the real
articles, the store grows with an archive made from them: article n takes the lead passage of one real
article (its headline, outlet and author with it) and the rest of its passages from three others, each with
its cached vector, under a new id and address, dated into 1994-2021 (oldest first within a tier, as ingest
writes an import). So each archive article reads like news and matches questions as real articles do, but
is older than the questions' news and is no near copy of any one article.

Every article goes through ingest's own write step (`store_embedded`: story grouping, the catalog, the
keyword and headline indexes, the Chroma collections), timed: articles/s of everything but the model. The
build resumes where it stopped (the store is the record of what is written). At each tier a fresh process
opens the store and asks the 2023-2024 development questions as written (most name their period: "this
week") and with their period words taken out, each once, timing retrieval (the question embedded, searched,
fused, dated) and, beside it, the vector search alone over the months the question names (the newest month
when it names none); then it asks them all again, as a running app would, its shelves loaded. It reports
peak RSS, the time to open the store, disk per article, and Hit@1/5 and MRR@10 with 95% intervals.
Figures go to DATA/figures.json and, with --plot, to a PNG.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "eval" / "realtimeqa"

from evaluate import evaluate, intervals, read_questions, summarize  # noqa: E402

from ingest.articles import read_articles  # noqa: E402
from ingest.chunks import embedding_text, make_splitter, split_article  # noqa: E402
from ingest.pipeline import store_embedded  # noqa: E402
from ingest.sources import SourceFile  # noqa: E402
from ingest.stories import StoryIndex  # noqa: E402
from rag.config import Settings, load_settings  # noqa: E402
from rag.dates import time_frame  # noqa: E402
from rag.documents import Article, Chunk  # noqa: E402
from rag.embeddings import embedding_model_for  # noqa: E402
from rag.retrieve import Query, retrieve  # noqa: E402
from rag.store import StoreError, open_store  # noqa: E402

TIERS = (5_000, 6_624, 30_000, 100_000, 300_000, 1_000_000)
ARCHIVE_YEARS = (1994, 2021)  # archive articles are dated into these years, oldest first within a tier
GROUP = 1024  # passages written together, as ingest's write groups
REOPEN_EVERY = 200  # write groups between openings of the store
Cached = tuple[Article, list[tuple[int, int]], np.ndarray]  # an article, its passage spans and vectors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", default=",".join(map(str, TIERS)), help="store sizes to measure at")
    parser.add_argument("--max", type=int, help="stop after the tiers up to this many articles")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scale", help="store, cache, figures")
    parser.add_argument(
        "--first", type=Path, default=EVAL / "rtqa2023_2026_answer_corpus.jsonl.gz", help="articles first"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=SHARED / "corpora" / "rtqa_news_articles_2022_2026.jsonl.gz",
        help="the rest of the real articles",
    )
    parser.add_argument("--questions", type=Path, default=EVAL / "rtqa2023_2024_recent_dev_questions.jsonl")
    parser.add_argument("--harvest", type=Path, nargs="*", default=sorted((ROOT / "data" / "eval").glob("*")),
                        help="built stores whose vectors fill the cache")  # fmt: skip
    parser.add_argument("--plot", type=Path, help="write the figures as a PNG here")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # the measuring child process
    return parser.parse_args(argv)


def settings(data: Path) -> Settings:
    return load_settings(data_dir=data / "store", CHROMA_HOST=None, CHROMA_PORT=None)


# The real articles and their vectors


def read_real(first: Path, corpus: Path, config: Settings) -> list[Article]:
    """The real articles in build order: `first`'s, then the corpus's others."""
    seen: dict[str, Article] = {}
    for path in (first, corpus):
        for item in read_articles(SourceFile(path.parent, path), config=config):
            if isinstance(item, Article) and item.article_id not in seen and item.text.strip():
                seen[item.article_id] = item
    return list(seen.values())


class VectorCache:
    """Each real article's passage spans and vectors, as ingest made them: filled once, kept on disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS passages (article_id TEXT, idx INTEGER, start INTEGER, "
                        "end INTEGER, vector BLOB, PRIMARY KEY (article_id, idx))")  # fmt: skip
        self.db.execute("CREATE TABLE IF NOT EXISTS done (article_id TEXT PRIMARY KEY)")

    def missing(self, articles: Sequence[Article]) -> list[Article]:
        done = {row[0] for row in self.db.execute("SELECT article_id FROM done")}
        return [a for a in articles if a.article_id not in done]

    def put(
        self, article_id: str, spans: Sequence[tuple[int, int]], vectors: Sequence[Sequence[float]]
    ) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO passages VALUES (?, ?, ?, ?, ?)",
            [(article_id, n, s, e, np.asarray(v, np.float32).tobytes()) for n, ((s, e), v) in
             enumerate(zip(spans, vectors, strict=True))],
        )  # fmt: skip
        self.db.execute("INSERT OR REPLACE INTO done VALUES (?)", (article_id,))

    def get(self, articles: Sequence[Article]) -> list[Cached]:
        by_id: dict[str, list[tuple[int, int, int, bytes]]] = {}
        for article_id, idx, start, end, vector in self.db.execute(
            "SELECT article_id, idx, start, end, vector FROM passages ORDER BY article_id, idx"
        ):
            by_id.setdefault(article_id, []).append((idx, start, end, vector))
        cached = []
        for article in articles:
            rows = by_id.get(article.article_id, [])
            spans = [(s, e) for _, s, e, _ in rows]
            vectors = (
                np.stack([np.frombuffer(v, np.float32) for *_, v in rows]) if rows else np.zeros((0, 384))
            )
            cached.append((article, spans, vectors))
        return cached


def harvest(cache: VectorCache, articles: list[Article], stores: Sequence[Path]) -> int:
    """Fill the cache from built stores of the same model and passage settings; return articles taken."""
    wanted = {a.article_id for a in cache.missing(articles)}
    taken = 0
    for folder in stores:
        if not (folder / "newsdesk.sqlite").exists() or not wanted:
            continue
        try:
            store = open_store(load_settings(data_dir=folder, CHROMA_HOST=None, CHROMA_PORT=None))
        except StoreError as error:
            print(f"not harvested: {folder}: {error}", file=sys.stderr)
            continue
        with store:
            rows = store.db.execute(
                "SELECT p.article_id, p.chunk_id, p.chunk_index, p.start, p.end FROM passages p "
                "JOIN articles a ON a.article_id = p.article_id ORDER BY p.article_id, p.chunk_index"
            ).fetchall()
            spans: dict[str, list[tuple[str, int, int]]] = {}
            for article_id, cid, _, start, end in rows:
                if article_id in wanted:
                    spans.setdefault(article_id, []).append((cid, start, end))
            vectors = store.passage_vectors([cid for parts in spans.values() for cid, _, _ in parts])
            for article_id, parts in spans.items():
                if all(cid in vectors for cid, _, _ in parts):
                    cache.put(article_id, [(s, e) for _, s, e in parts], [vectors[c] for c, _, _ in parts])
                    wanted.discard(article_id)
                    taken += 1
        cache.db.commit()
    return taken


def embed_missing(cache: VectorCache, articles: list[Article], config: Settings) -> int:
    """Split and embed the articles the cache lacks, as ingest does; committed as it goes."""
    missing = cache.missing(articles)
    if not missing:
        return 0
    model, splitter = embedding_model_for(config), make_splitter(config)
    started, done = time.perf_counter(), 0
    for start in range(0, len(missing), 64):
        batch = missing[start : start + 64]
        pieces = {a.article_id: split_article(a, splitter) for a in batch}
        texts = [embedding_text(a, c) for a in batch for c in pieces[a.article_id]]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[Sequence[float]] = [[] for _ in texts]
        for at in range(0, len(order), 64):
            part = order[at : at + 64]
            for i, vector in zip(part, model.get_text_embedding_batch([texts[i] for i in part]), strict=True):
                vectors[i] = vector
        offset = 0
        for article in batch:
            chunks = pieces[article.article_id]
            cache.put(
                article.article_id, [(c.start, c.end) for c in chunks], vectors[offset : offset + len(chunks)]
            )
            offset += len(chunks)
        cache.db.commit()
        done += len(texts)
        rate = done / (time.perf_counter() - started)
        print(
            f"embedded {start + len(batch)}/{len(missing)} articles ({rate:.1f} passages/s)", file=sys.stderr
        )
    return len(missing)


# The archive


def archive_article(n: int, real: Sequence[Cached], *, day: date) -> Cached:
    """Archive article n: the lead of one real article and passages of three others, dated `day`."""
    rng = random.Random(n * 7919 + 17)
    lead = real[rng.randrange(len(real))]
    others = [real[rng.randrange(len(real))] for _ in range(3)]
    drawn = [(lead, 0)] + [(o, i) for o in others for i in range(len(o[1]))]
    rest = drawn[1:]
    rng.shuffle(rest)
    chosen = [drawn[0], *rest[: max(1, min(len(lead[1]), 16) - 1)]]
    texts = [source[0].text[source[1][i][0] : source[1][i][1]] for source, i in chosen]
    spans, position = [], 0
    for text in texts:
        spans.append((position, position + len(text)))
        position += len(text) + 2
    article = lead[0]
    made = Article(
        article_id=f"archive/{n:07d}",
        text="\n\n".join(texts),
        source=f"archive#{n}",
        title=article.title,
        outlet=article.outlet,
        author=article.author,
        url=f"https://archive.example/{day:%Y/%m/%d}/{n:07d}",
        published_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=rng.randrange(24)),
    )
    vectors = np.stack([source[2][i] for source, i in chosen])
    return made, spans, vectors


def archive_day(n: int, start: int, end: int) -> date:
    """The day of archive article n among those numbered start..end-1: spread over ARCHIVE_YEARS in order."""
    first = date(ARCHIVE_YEARS[0], 1, 1).toordinal()
    last = date(ARCHIVE_YEARS[1], 12, 31).toordinal()
    return date.fromordinal(first + (last - first) * (n - start) // max(end - start, 1))


def as_chunks(article: Article, spans: Sequence[tuple[int, int]]) -> list[Chunk]:
    return [Chunk(article.article_id, i, article.text[s:e], s, e) for i, (s, e) in enumerate(spans)]


# Building


def build(
    args: argparse.Namespace,
    tiers: list[int],
    articles: list[Article],
    cache: VectorCache,
    figures: dict,  # type: ignore[type-arg]
) -> None:
    """Grow the store through the tiers, measuring each once it is reached. A tier's real articles are
    embedded (those the cache lacks) before it is written, so the first tiers need no embedding at all."""
    config = settings(args.data)
    bounds = [0, *tiers]
    for tier_start, tier in zip(bounds, bounds[1:], strict=False):
        key = str(tier)
        if figures.get(key, {}).get("measured"):
            continue
        wanted = articles[:tier]  # past the real articles, the archive draws on all of them
        print(f"tier {tier}: {embed_missing(cache, wanted, config)} articles embedded", file=sys.stderr)
        real = [c for c in cache.get(wanted) if c[1]]
        entry = figures.setdefault(key, {"seconds": 0.0, "written": 0})
        held = 0
        while held < tier:  # the store is opened afresh now and then: Chroma lets go of what it loaded
            with open_store(config) as store:
                store.recover()
                held = store.overview().articles
                stories = StoryIndex(config.stories, store)
                for _ in range(REOPEN_EVERY):
                    if held >= tier:
                        break
                    group = next_group(held, tier, tier_start, real)
                    started = time.perf_counter()
                    items = [(a, as_chunks(a, spans), list(vectors)) for a, spans, vectors in group]
                    stored = set(store.articles([a.article_id for a, _, _ in items]))
                    store_embedded(
                        [i for i in items if i[0].article_id not in stored], store=store, stories=stories
                    )
                    entry["seconds"] += time.perf_counter() - started
                    entry["written"] += len(items)
                    held = store.overview().articles
                    save(args.data, figures)
                    rate = entry["written"] / entry["seconds"]
                    print(f"tier {tier}: {held} articles, {rate:.1f} articles/s", file=sys.stderr)
        entry["articles_per_s"] = entry["written"] / entry["seconds"] if entry["seconds"] else None
        entry.update(measure_in_child(args, tier))
        entry["measured"] = True
        save(args.data, figures)
        print(json.dumps({"tier": tier, **entry}), flush=True)
        if args.plot:  # redrawn at every tier, so a build stopped part way has its figures drawn
            plot(figures, args.plot)


def next_group(held: int, tier: int, tier_start: int, real: list[Cached]) -> list[Cached]:
    """The next articles to write, about GROUP passages: real ones first, then the archive."""
    group, passages, n = [], 0, held
    while n < tier and passages < GROUP:
        if n < len(real):
            item = real[n]
        else:
            first = max(tier_start, len(real))
            item = archive_article(n - len(real), real, day=archive_day(n, first, tier))
        group.append(item)
        passages += len(item[1])
        n += 1
    return group


def save(data: Path, figures: dict) -> None:  # type: ignore[type-arg]
    (data / "figures.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")


# Measuring (in a child process, so its RSS is that of a process answering questions)


def measure_in_child(args: argparse.Namespace, tier: int) -> dict:  # type: ignore[type-arg]
    child = subprocess.run(
        [sys.executable, __file__, "--measure", str(tier), "--data", str(args.data),
         "--questions", str(args.questions)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    config = settings(args.data)
    started = time.perf_counter()
    store = open_store(config)
    opened = time.perf_counter() - started
    model = embedding_model_for(config)
    model.get_query_embedding("warm up")
    questions = read_questions(args.questions)
    times: dict[str, list[float]] = {
        "period": [], "undated": [], "vector_period": [], "vector_undated": [], "period_again": [],
        "undated_again": [],
    }  # fmt: skip
    asked: list[tuple[str, str, date]] = []
    for question in questions:
        frame = time_frame(question.question, as_of=question.as_of)
        forms = {"undated": _without(question.question, frame.phrase)}
        if frame.is_range:
            forms["period"] = question.question
        for form, text in forms.items():
            started = time.perf_counter()
            retrieve(Query(text, as_of=question.as_of), store=store, embedder=model, config=config.retrieval)
            times[form].append(time.perf_counter() - started)
            asked.append((form, text, question.as_of))
            months = _months(frame.start, frame.end) if form == "period" else [f"{question.as_of:%Y-%m}"]
            started = time.perf_counter()
            vector = model.get_query_embedding(text)
            store.vector_search(vector, k=6, periods=months)
            times[f"vector_{form}"].append(time.perf_counter() - started)
    for form, text, as_of in asked:  # again, as a running app answers: the shelves it read are loaded
        started = time.perf_counter()
        retrieve(Query(text, as_of=as_of), store=store, embedder=model, config=config.retrieval)
        times[f"{form}_again"].append(time.perf_counter() - started)
    outcomes = list(evaluate(questions, store=store, embedder=model, answerer=None, config=config.retrieval))
    figures, spans = summarize(outcomes, k=10), intervals(outcomes, k=10)
    held = store.overview()
    store.close()
    disk = sum(p.stat().st_size for p in (args.data / "store").rglob("*") if p.is_file())
    result = {
        "articles": held.articles,
        "passages": held.passages,
        "open_s": round(opened, 2),
        "disk_per_article_kb": round(disk / held.articles / 1024, 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "questions": {form: len(values) for form, values in times.items()},
    }
    for form, values in times.items():
        result[f"{form}_p50_ms"] = round(statistics.median(values) * 1000, 1) if values else None
        result[f"{form}_p95_ms"] = round(float(np.percentile(values, 95)) * 1000, 1) if values else None
    for name in ("hit@1", "hit@5", "mrr@10"):
        result[name] = figures[name]
        result[f"{name}_ci"] = list(spans[name])
    return result


def _without(question: str, phrase: str | None) -> str:
    """The question with the words that name its period taken out."""
    if not phrase:
        return question
    return " ".join(re.sub(re.escape(phrase), " ", question, flags=re.IGNORECASE).split())


def _months(start: date | None, end: date | None) -> list[str]:
    if start is None or end is None:
        return [f"{(end or start or date.today()):%Y-%m}"]
    months, day = [], start.replace(day=1)
    while day <= end:
        months.append(f"{day:%Y-%m}")
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


# Reporting


COLUMNS = (
    "articles", "passages", "non-model ingest articles/s", "open s", "disk KB/article", "peak RSS MB",
    "period p50 / p95 ms", "undated p50 / p95 ms", "vector only (period) p50 / p95 ms",
    "asked again: period · undated p95 ms", "Hit@1", "Hit@5", "MRR@10",
)  # fmt: skip


def table(figures: dict) -> str:  # type: ignore[type-arg]
    """The measured tiers as a Markdown table."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for key in sorted(figures, key=int):
        f = figures[key]
        if not f.get("measured"):
            continue
        cells = [
            f"{f['articles']:,}",
            f"{f['passages']:,}",
            f"{f['articles_per_s']:.1f}" if f.get("articles_per_s") else "–",
            str(f["open_s"]),
            str(f["disk_per_article_kb"]),
            f"{f['rss_mb']:,}",
            *(
                f"{f[form + '_p50_ms']} / {f[form + '_p95_ms']}"
                for form in ("period", "undated", "vector_period")
            ),
            f"{f.get('period_again_p95_ms', '–')} · {f.get('undated_again_p95_ms', '–')}",
            *(
                f"{f[name]:.3f} [{f[name + '_ci'][0]:.3f}, {f[name + '_ci'][1]:.3f}]"
                for name in ("hit@1", "hit@5", "mrr@10")
            ),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(figures: dict, path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [figures[k] for k in sorted(figures, key=int) if figures[k].get("measured")]
    sizes = [f["articles"] for f in measured]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, label in (("period_p95_ms", "question naming a period"), ("undated_p95_ms", "undated question"),
                        ("vector_period_p95_ms", "vector search alone")):  # fmt: skip
        axes[0].plot(sizes, [f[name] for f in measured], marker="o", label=label)
    axes[0].set(title="retrieval p95 (ms)", xscale="log", xlabel="articles", ylim=(0, None))
    axes[0].legend(fontsize=8)
    axes[1].plot(sizes, [f["rss_mb"] for f in measured], marker="o")
    axes[1].set(
        title="peak RSS of the answering process (MB)", xscale="log", xlabel="articles", ylim=(0, None)
    )
    below = [f["hit@5"] - f["hit@5_ci"][0] for f in measured]
    above = [f["hit@5_ci"][1] - f["hit@5"] for f in measured]
    axes[2].errorbar(sizes, [f["hit@5"] for f in measured], yerr=[below, above], marker="o", capsize=3)
    axes[2].set(title="Hit@5, 2023-2024 questions", xscale="log", xlabel="articles", ylim=(0, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(args)))
        return 0
    tiers = sorted(int(t) for t in args.tiers.split(",") if t.strip())
    tiers = [t for t in tiers if args.max is None or t <= args.max]
    args.data.mkdir(parents=True, exist_ok=True)
    config = settings(args.data)
    articles = read_real(args.first, args.corpus, config)
    cache = VectorCache(args.data / "vectors.sqlite")
    taken = harvest(cache, articles, args.harvest)
    print(f"{len(articles)} real articles; {taken} taken from built stores", file=sys.stderr)
    figures_path = args.data / "figures.json"
    figures = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    build(args, tiers, articles, cache, figures)
    print(table(figures))
    if args.plot and any(f.get("measured") for f in figures.values()):
        plot(figures, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
