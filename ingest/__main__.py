"""`python -m ingest [PATH ...]`: bring the store in step with a folder of news articles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.pipeline import ingest_paths
from rag.config import Settings, load_settings
from rag.embeddings import embedding_model_for
from rag.store import StoreError, open_store


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description=(
            "Read news articles (.txt, .md, .html, .json, .jsonl, .jsonl.gz) and store their passages "
            "for question answering. Only new or changed articles are embedded; unchanged ones are skipped."
        ),
        epilog="Settings come from NEWSDESK_* environment variables and .env (see README).",
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, default=[Path("seeds")], help="folders or files (default: seeds/)"
    )
    parser.add_argument(
        "--prune", action="store_true", help="remove stored articles whose file or record is gone"
    )
    parser.add_argument("--rebuild", action="store_true", help="empty the store and ingest everything again")
    parser.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    parser.add_argument("--list", action="store_true", help="list the stored articles instead of ingesting")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run ingest and print its summary; exit 1 when any input failed, 2 when ingest could not run."""
    args = parse_args(argv)
    config = load_settings()
    if args.list:
        return list_articles(config)
    try:
        with open_store(config, rebuild=args.rebuild and not args.dry_run) as store:
            summary = ingest_paths(
                args.paths,
                config=config,
                store=store,
                embedder=lambda: embedding_model_for(config),
                prune=args.prune,
                dry_run=args.dry_run,
            )
            stored = len(store.articles())
    except (StoreError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.render())
    print(f"The store in {config.data_dir} now holds {stored} articles.")
    return 1 if summary.failures else 0


def list_articles(config: Settings) -> int:
    """Print the stored articles: headline, outlet, publish date and passages."""
    try:
        with open_store(config) as store:
            articles = sorted(store.articles().values(), key=lambda a: (a.published_at or "", a.article_id))
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for entry in articles:
        held = f"duplicate of {entry.duplicate_of}" if entry.duplicate_of else f"{entry.chunk_count} passages"
        print(
            f"{entry.published_at or 'date unknown'} | {entry.outlet or 'outlet unknown'} | "
            f"{entry.title or 'no headline'} | {entry.article_id} | {held}"
        )
    print(f"{len(articles)} articles in {config.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
