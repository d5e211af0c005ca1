"""`python -m rag ask "QUESTION"`: answer a question from the stored articles, with its sources."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from rag.answer import Sources, TextDelta, answerer_for
from rag.config import load_settings
from rag.conversation import ask
from rag.embeddings import embedding_model_for
from rag.retrieve import Query
from rag.store import StoreError, open_store


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m rag", description="Ask the stored news articles.")
    commands = parser.add_subparsers(dest="command", required=True)
    asking = commands.add_parser("ask", help="answer a question with cited sources")
    asking.add_argument("question")
    asking.add_argument("--as-of", type=date.fromisoformat, default=date.today(), help="'today' (YYYY-MM-DD)")
    asking.add_argument("--outlet", action="append", default=[], help="only this outlet (repeatable)")
    asking.add_argument("--since", type=date.fromisoformat, help="only articles published on or after")
    asking.add_argument("--until", type=date.fromisoformat, help="only articles published on or before")
    asking.add_argument("-k", type=int, default=6, help="passages to answer from (default 6)")
    asking.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    serving = commands.add_parser("serve", help="start Chroma, ingest the corpus folder, serve the app")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8501, help="the app's port (default 8501)")
    serving.add_argument(
        "--chroma-port", type=int, default=8765, help="the Chroma server's port (default 8765)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit 2 when the store cannot be opened."""
    args = parse_args(argv)
    config = load_settings()
    if args.command == "serve":
        from rag.serve import serve

        return serve(config, host=args.host, port=args.port, chroma_port=args.chroma_port)
    query = Query(
        args.question,
        as_of=args.as_of,
        outlets=tuple(args.outlet),
        since=args.since,
        until=args.until,
        k=args.k,
    )
    try:
        with open_store(config) as store:
            turn = ask(
                query,
                store=store,
                embedder=embedding_model_for(config),
                answerer=answerer_for(config),
                config=config.retrieval,
            )
            text, sources = [], None
            for event in turn.events:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    if not args.json:
                        print(event.text, end="", flush=True)
                elif isinstance(event, Sources):
                    sources = event
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assert sources is not None
    if args.json:
        print(json.dumps(_as_json(turn, "".join(text), sources), ensure_ascii=False, indent=2))
    else:
        print("\n")
        for citation in sources.citations:
            p = citation.passage
            print(
                f"[{citation.number}] {p.title or 'no headline'} | {p.outlet or 'unknown outlet'} | "
                f"{p.published_at[:10] if p.published_at else 'date unknown'} | {p.url or p.article_id}"
            )
        print(f"({sources.mode})")
    return 0


def _as_json(turn, answer: str, sources: Sources) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "question": turn.question,
        "standalone_question": turn.standalone,
        "answer": answer,
        "mode": sources.mode,
        "removed_markers": sources.removed_markers,
        "citations": [
            {
                "number": c.number,
                **_describe(c.passage),
                "passage": c.passage.text,
                "highlights": [c.passage.text[s:e] for s, e in c.highlights],
            }
            for c in sources.citations
        ],
        "passages": [{**_describe(p), "score": round(p.score, 6)} for p in turn.retrieval.passages],
    }


def _describe(passage) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "article_id": passage.article_id,
        "url": passage.url,
        "title": passage.title,
        "outlet": passage.outlet,
        "published_at": passage.published_at,
    }


if __name__ == "__main__":
    sys.exit(main())
