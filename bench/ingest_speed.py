"""Benchmark ingest against the model's own throughput and the llama-index tutorial pipeline.

    .venv/bin/python bench/ingest_speed.py [--articles 1000]

Takes the first N articles of ../shared/corpora/rtqa_news_articles_2022_2026.jsonl.gz and measures, each phase
in its own process (so peak RSS is its own):
- model: the embedding model alone on exactly the texts ingest embeds (headline + passage), all sorted by
  length (the limit);
- newsdesk: `python -m ingest`'s pipeline (read, split, embed, write Chroma + keyword index + catalog);
- rerun: the same ingest again with nothing changed;
- postgres, postgres rerun (with --database-url): newsdesk and its rerun with the catalog in PostgreSQL;
  with --vectors-from STORE (a store built from the same articles), newsdesk and postgres take that store's
  vectors instead of the model's and so measure ingest beyond the model (a passage it lacks is embedded, and
  counted as embedded_here);
- story grouping: the part of newsdesk's time spent grouping articles into stories (MinHash, lead vectors);
- tutorial: `VectorStoreIndex.from_documents` into Chroma with the same model and llama-index's
  SentenceSplitter at the same size (in the model's tokens) and its defaults otherwise, each Document carrying
  its headline as metadata, which llama-index copies to every node and embeds with the text, as Newsdesk does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "rtqa_news_articles_2022_2026.jsonl.gz"


def write_sample(corpus: Path, count: int, target: Path) -> None:
    """Write the first `count` articles of the corpus as a .jsonl file."""
    with gzip.open(corpus, "rt", encoding="utf-8") as source, target.open("w", encoding="utf-8") as out:
        for n, line in enumerate(source):
            if n >= count:
                break
            out.write(line)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StoredVectors:
    """The vectors a store built from the same articles holds, handed to ingest in place of the model's (by
    the text embedded): ingest then costs what it costs beyond the model. A text the store lacks is
    embedded."""

    def __init__(self, folder: Path) -> None:
        import numpy as np

        from rag.config import load_settings
        from rag.store import open_store

        with open_store(load_settings(data_dir=folder, CHROMA_HOST=None, CHROMA_PORT=None)) as store:
            rows = store.database.rows(
                "SELECT p.chunk_id, a.title, p.text FROM passages p "
                "JOIN articles a ON a.article_id = p.article_id"
            )
            vectors = store.passage_vectors([cid for cid, _, _ in rows])
        kept = [(f"{title}\n\n{text}" if title else text, cid) for cid, title, text in rows if cid in vectors]
        self.index = {text: n for n, (text, _) in enumerate(kept)}
        self.vectors = np.asarray([vectors[cid] for _, cid in kept], dtype=np.float32)
        self.model: object | None = None
        self.missed = 0

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.index]
        if missing:
            from rag.config import Settings
            from rag.embeddings import embedding_model_for

            self.model = self.model or embedding_model_for(Settings())
            self.missed += len(missing)
            made = dict(zip(missing, self.model.get_text_embedding_batch(missing), strict=True))  # type: ignore[attr-defined]
        return [self.vectors[self.index[t]].tolist() if t in self.index else made[t] for t in texts]


def phase_newsdesk(
    sample: Path, data_dir: Path, database_url: str | None = None, vectors_from: Path | None = None
) -> dict[str, float]:
    from ingest.pipeline import ingest_paths
    from rag.config import Settings
    from rag.embeddings import embedding_model_for
    from rag.store import open_store

    config = Settings(data_dir=data_dir, database_url=database_url)
    stored = StoredVectors(vectors_from) if vectors_from else None
    started = time.perf_counter()
    with open_store(config) as store:
        summary = ingest_paths(
            [sample], config=config, store=store, embedder=lambda: stored or embedding_model_for(config)
        )
    seconds = time.perf_counter() - started

    articles = summary.new + summary.changed + summary.unchanged + summary.duplicate
    return {
        "seconds": seconds,
        "articles": articles,
        "passages": summary.chunks_written,
        "story_seconds": summary.story_seconds,
        **({"embedded_here": stored.missed} if stored else {}),  # passages the stored vectors lacked
    }


def _passages(sample: Path) -> tuple[int, list[str]]:
    from ingest.articles import read_articles
    from ingest.chunks import embedding_text, make_splitter, split_article
    from ingest.sources import discover_files
    from rag.config import Settings
    from rag.documents import Article

    config = Settings()
    splitter = make_splitter(config)
    articles = [
        a for s in discover_files([sample]) for a in read_articles(s, config=config) if isinstance(a, Article)
    ]
    return len(articles), [embedding_text(a, c) for a in articles for c in split_article(a, splitter)]


def phase_model(sample: Path) -> dict[str, float]:
    from rag.config import Settings
    from rag.embeddings import embedding_model_for

    articles, texts = _passages(sample)
    started = time.perf_counter()
    model = embedding_model_for(Settings())
    # The limit: every passage at once, sorted by token length over the whole set, no padding to speak of.
    model.embed(texts)  # type: ignore[attr-defined]
    return {"seconds": time.perf_counter() - started, "articles": articles, "passages": len(texts)}


def phase_tutorial(sample: Path, data_dir: Path) -> dict[str, float]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.config import Settings
    from rag.embeddings import embedding_model_for, load_tokenizer

    config = Settings()
    tokenizer = load_tokenizer(100_000)  # the splitter counts the model's tokens, as Newsdesk's does
    started = time.perf_counter()
    # The tutorial reads documents and indexes them; same text and headline, same passage size, same model.
    with sample.open(encoding="utf-8") as lines:
        documents = [
            Document(
                text=r["text"], id_=r["doc_id"], metadata={"title": r["title"]} if r.get("title") else {}
            )
            for r in map(json.loads, lines)
            if r.get("text")
        ]
    client = chromadb.PersistentClient(
        path=str(data_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("tutorial")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    VectorStoreIndex.from_documents(
        documents,
        storage_context=storage,
        embed_model=embedding_model_for(config),
        transformations=[
            SentenceSplitter(
                chunk_size=config.chunk_tokens,
                chunk_overlap=config.chunk_overlap,
                tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False).ids,
            )
        ],
    )
    return {
        "seconds": time.perf_counter() - started,
        "articles": len(documents),
        "passages": collection.count(),
    }


def run_phase(
    name: str, sample: Path, workdir: Path, database_url: str | None, vectors_from: Path | None = None
) -> dict[str, float]:
    """Run one phase in a child process and return its figures."""
    catalog = ["--database-url", database_url] if database_url else []
    catalog += ["--vectors-from", str(vectors_from)] if vectors_from else []
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            name,
            "--sample",
            str(sample),
            "--workdir",
            str(workdir),
            *catalog,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(figures: dict[str, dict[str, float]]) -> str:
    """Return the results as a Markdown table and the ratios against the targets."""
    rows = [
        "| phase | seconds | articles/s | passages/s | passages | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in figures.items():
        rows.append(
            f"| {name} | {f['seconds']:.1f} | {f['articles'] / f['seconds']:.2f} | "
            f"{f['passages'] / f['seconds']:.2f} | {int(f['passages'])} | {f['rss_mb']:.0f} |"
        )
    ours = figures["newsdesk"]
    rows.append("")
    if "model" in figures:
        rows.append(
            f"newsdesk / model time: {ours['seconds'] / figures['model']['seconds']:.3f} (target <= 1.15)"
        )
    if "tutorial" in figures:
        ratio = figures["tutorial"]["seconds"] / ours["seconds"]
        rows.append(f"tutorial / newsdesk time: {ratio:.3f} (target >= 1.0)")
    if "rerun" in figures:
        rows.append(
            f"rerun / first run time: {figures['rerun']['seconds'] / ours['seconds']:.2%} (target < 5%)"
        )
    if "postgres" in figures:
        other = figures["postgres"]
        line = f"PostgreSQL catalog / SQLite catalog time: {other['seconds'] / ours['seconds']:.3f}"
        if "model" in figures:
            model = figures["model"]["seconds"]
            line += f"; beyond the model: {(other['seconds'] - model) / (ours['seconds'] - model):.3f}"
        rows.append(line)
    rows.append(
        f"story grouping / newsdesk time: {ours['story_seconds'] / ours['seconds']:.2%} "
        f"({ours['story_seconds']:.1f} s; target < 5%)"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--phases",
        default="model,newsdesk,rerun,tutorial",
        help="comma-separated phases to run (newsdesk always runs; default: all)",
    )
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database: also run newsdesk and its rerun with the catalog there "
        "(phases postgres, postgres rerun)",
    )
    parser.add_argument(
        "--vectors-from",
        type=Path,
        metavar="STORE",
        help="a store built from the same articles: newsdesk and postgres take its vectors instead of "
        "running the model, so they measure what ingest costs beyond it",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        figures = {
            "model": lambda: phase_model(args.sample),
            "newsdesk": lambda: phase_newsdesk(
                args.sample, args.workdir / "newsdesk", None, args.vectors_from
            ),
            "rerun": lambda: phase_newsdesk(args.sample, args.workdir / "newsdesk"),
            "tutorial": lambda: phase_tutorial(args.sample, args.workdir / "tutorial"),
            "postgres": lambda: phase_newsdesk(
                args.sample, args.workdir / "postgres", args.database_url, args.vectors_from
            ),
            "postgres rerun": lambda: phase_newsdesk(
                args.sample, args.workdir / "postgres", args.database_url
            ),
        }[args.phase]()
        print(json.dumps({**figures, "rss_mb": peak_rss_mb()}))
        return

    if not args.corpus.exists():
        raise SystemExit(f"{args.corpus} not found: this benchmark reads the corpus from ../shared/corpora/")
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-") as tmp:
        workdir = Path(tmp)
        sample = workdir / "sample.jsonl"
        write_sample(args.corpus, args.articles, sample)
        figures = {}
        wanted = set(args.phases.split(",")) | {"newsdesk"}
        if args.database_url:
            wanted |= {"postgres", "postgres rerun"}
        phases = ("model", "newsdesk", "rerun", "postgres", "postgres rerun", "tutorial")
        for name in [p for p in phases if p in wanted]:
            figures[name] = run_phase(name, sample, workdir, args.database_url, args.vectors_from)
            print(f"{name}: {figures[name]}", file=sys.stderr, flush=True)
        print(f"{args.articles} articles from {args.corpus.name}\n")
        print(report(figures))


if __name__ == "__main__":
    main()
