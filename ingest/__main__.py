"""`python -m ingest [PATH|URL ...] [--feed URL ...] [--follow]`: bring the store in step with folders of
news articles, article pages and feeds."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.pipeline import Summary, ingest_sources
from ingest.sources import SourceSet, SourcesFileError, read_sources_file
from ingest.web import FetchState, is_web_url
from rag.config import Settings, load_settings
from rag.documents import UNKNOWN_DATE, headline_label, outlet_label
from rag.embeddings import embedding_model_for
from rag.store import StoreError, open_store

INTERVAL = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*", re.IGNORECASE)


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
        "paths",
        nargs="*",
        metavar="PATH|URL",
        help="folders, article files or article page URLs (default: the sources file if any, else seeds/)",
    )
    parser.add_argument("--feed", action="append", default=[], metavar="URL", help="an RSS or Atom feed")
    parser.add_argument(
        "--sources",
        type=Path,
        metavar="FILE",
        help="sources file read when no PATH, URL or feed is given (default: NEWSDESK_SOURCES_FILE, "
        "sources.toml)",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep polling the sources and ingest what is new until stopped"
    )
    parser.add_argument(
        "--every",
        type=_interval,
        metavar="INTERVAL",
        help="time between polls with --follow: minutes, or with a unit (30s, 5m, 1h; default: "
        "NEWSDESK_FOLLOW_MINUTES, 15)",
    )
    parser.add_argument(
        "--prune", action="store_true", help="remove stored articles whose file or record is gone"
    )
    parser.add_argument("--rebuild", action="store_true", help="empty the store and ingest everything again")
    parser.add_argument(
        "--regroup",
        action="store_true",
        help="group every stored article into stories again (after changing NEWSDESK_STORIES__*); "
        "nothing is embedded again",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    parser.add_argument("--list", action="store_true", help="list the stored articles instead of ingesting")
    parser.add_argument(
        "--copy-catalog-to",
        metavar="URL",
        help="copy the store's catalog into an empty PostgreSQL database (postgresql://...) instead of "
        "ingesting; its vectors stay where they are",
    )
    return parser.parse_args(argv)


def _interval(text: str) -> float:
    """Seconds from `15` (minutes), `30s`, `5m` or `1h`."""
    match = INTERVAL.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval such as 15, 30s, 5m or 1h")
    unit = (match.group(2) or "m").lower()[0]
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]


def choose_sources(args: argparse.Namespace, config: Settings) -> SourceSet:
    """What to read: the command line's paths, URLs and feeds, else the sources file, else seeds/."""
    given = SourceSet(
        paths=tuple(Path(p) for p in args.paths if not is_web_url(p)),
        feeds=tuple(args.feed),
        pages=tuple(p for p in args.paths if is_web_url(p)),
    )
    if given:
        return given
    sources_file = args.sources or config.sources_file
    if args.sources or sources_file.exists():
        return read_sources_file(sources_file)
    return SourceSet(paths=(Path("seeds"),))


def main(argv: list[str] | None = None) -> int:
    """Run ingest and print its summary; exit 1 when any input failed, 2 when ingest could not run."""
    args = parse_args(argv)
    config = load_settings()
    if args.list:
        return list_articles(config)
    if args.copy_catalog_to:
        return copy_catalog_to(config, args.copy_catalog_to)
    try:
        sources = choose_sources(args, config)
        if args.follow:
            return follow(sources, config, every=args.every or 60 * config.follow_minutes)
        summary, stored = run_once(
            sources,
            config,
            rebuild=args.rebuild and not args.dry_run,
            prune=args.prune,
            dry_run=args.dry_run,
            regroup=args.regroup,
        )
    except (StoreError, FileNotFoundError, SourcesFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.render())
    print(f"The store in {config.data_dir} now holds {stored} articles.")
    return 1 if summary.failures else 0


def run_once(
    sources: SourceSet,
    config: Settings,
    *,
    rebuild: bool = False,
    prune: bool = False,
    dry_run: bool = False,
    regroup: bool = False,
    embedder: Callable[[], BaseEmbedding] | None = None,
) -> tuple[Summary, int]:
    """One ingest of every source; returns its summary and how many articles the store holds."""
    with open_store(config, rebuild=rebuild) as store:
        summary = ingest_sources(
            sources,
            config=config,
            store=store,
            embedder=embedder or (lambda: embedding_model_for(config)),
            prune=prune,
            dry_run=dry_run,
            regroup=regroup,
        )
        return summary, len(store.articles())


def follow(sources: SourceSet, config: Settings, *, every: float) -> int:
    """Poll the sources every `every` seconds until SIGTERM or Ctrl-C, one summary line per poll.

    The store is opened for each poll only, so the app (or another ingest) can use it in between; the
    embedding model is loaded once, when the first poll needs it.
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    model: list[BaseEmbedding] = []

    def embedder() -> BaseEmbedding:
        if not model:
            model.append(embedding_model_for(config))
        return model[0]

    print(f"Following {sources.describe()} every {every:g} s; stop with Ctrl-C or SIGTERM.", flush=True)
    while not stop.is_set():
        try:
            summary, _ = run_once(sources, config, embedder=embedder)
        except (StoreError, FileNotFoundError) as error:
            _log(f"poll failed: {error}")
        except Exception as error:  # a follower keeps following: the next poll may well succeed
            _log(f"poll failed: {type(error).__name__}: {error}")
        else:
            _log(f"poll: {summary.one_line()}")
            for failure in summary.failures:
                print(f"  failed: {failure.source}: {failure.reason}", flush=True)
        stop.wait(every)
    print("Stopped.", flush=True)
    return 0


def _log(message: str) -> None:
    print(f"{datetime.now():%Y-%m-%d %H:%M:%S} {message}", flush=True)


def copy_catalog_to(config: Settings, url: str) -> int:
    """Copy the store's catalog into an empty PostgreSQL database, holding the store alone meanwhile."""
    from rag.store.copy import copy_catalog
    from rag.store.postgres import PostgresDatabase

    where = url.split("@")[-1]  # never the password
    try:
        with open_store(config) as store, store.writing(exclusive=True):
            target = PostgresDatabase(url)
            try:
                FetchState(target)  # its table, so what the source remembers of web servers comes along
                copied = copy_catalog(store.database, target)
            finally:
                target.close()
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"Copied {copied.get('articles', 0)} articles and {copied.get('passages', 0)} passages to PostgreSQL "
        f"at {where}. Set NEWSDESK_DATABASE_URL to it to use it; the vectors stay in "
        f"{'the Chroma server' if config.uses_chroma_server else config.data_dir / 'chroma'}."
    )
    return 0


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
            f"{entry.published_at or UNKNOWN_DATE} | {outlet_label(entry.outlet)} | "
            f"{headline_label(entry.title)} | {entry.article_id} | {held}"
        )
    print(f"{len(articles)} articles in {config.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
