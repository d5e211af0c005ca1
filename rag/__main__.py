"""`python -m rag ask "QUESTION"`: answer a question from the stored articles, with its sources;
`python -m rag timeline "SUBJECT"`: its stories in date order; `python -m rag brief`: what's new."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date

from rag.answer import answerer_for
from rag.config import load_settings
from rag.conversation import ask
from rag.documents import UNKNOWN_DATE, Passage
from rag.embeddings import embedding_model_for
from rag.events import AnswerEvent, DatedLine, Revised, Sources, TextDelta
from rag.retrieve import Query
from rag.store import StoreError, open_store
from rag.stories import as_of_line, brief


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m rag", description="Ask the stored news articles.")
    commands = parser.add_subparsers(dest="command", required=True)
    asking = commands.add_parser("ask", help="answer a question with cited sources")
    asking.add_argument("question")
    telling = commands.add_parser("timeline", help="the stories on a subject in date order, each cited")
    telling.add_argument("subject")
    for parser_ in (asking, telling):
        parser_.add_argument(
            "--as-of", type=date.fromisoformat, default=date.today(), help="'today' (YYYY-MM-DD)"
        )
        parser_.add_argument("--outlet", action="append", default=[], help="only this outlet (repeatable)")
        parser_.add_argument("--since", type=date.fromisoformat, help="only articles published on or after")
        parser_.add_argument("--until", type=date.fromisoformat, help="only articles published on or before")
        parser_.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    asking.add_argument("-k", type=int, default=6, help="passages to answer from (default 6)")
    briefing = commands.add_parser("brief", help="what's new: the new and updated stories, biggest first")
    period = briefing.add_mutually_exclusive_group()
    period.add_argument("--since", type=date.fromisoformat, help="stories with articles published since")
    period.add_argument(
        "--last-ingest", action="store_true", help="stories the last ingest brought (the default)"
    )
    briefing.add_argument("--json", action="store_true", help="print one JSON object for scripts")
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
    try:
        with open_store(config) as store:
            if args.command == "brief":
                covers, events = brief(store, since=args.since, config=config.stories)
                header: dict[str, object] = {"brief": covers}
                if not args.json:
                    print(f"What's new: stories {covers}\n")
                return _show(events, args.json, header)
            question = args.question if args.command == "ask" else f"timeline of {args.subject}"
            query = Query(
                question,
                as_of=args.as_of,
                outlets=tuple(args.outlet),
                since=args.since,
                until=args.until,
                k=getattr(args, "k", 6),
            )
            turn = ask(
                query,
                store=store,
                embedder=embedding_model_for(config),
                answerer=answerer_for(config),
                config=config.retrieval,
                stories=config.stories,
                answering=config.answer,
            )
            header = {"question": turn.question, "standalone_question": turn.standalone}
            return _show(turn.events, args.json, header, passages=turn.retrieval.passages)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _show(
    events: Iterable[AnswerEvent],
    as_json: bool,
    header: dict[str, object],
    *,
    passages: Sequence[Passage] = (),
) -> int:
    """Print an answer as it streams (or as one JSON object at the end) with its dated sources."""
    text, lines, sources, draft = [], [], None, None
    for event in events:
        if isinstance(event, Revised):
            draft, text = event.draft, [event.text]
            many = "sentence was" if event.unsupported == 1 else "sentences were"
            shown = f"\n\nRevised after checking ({event.unsupported} {many} not supported):\n{event.text}"
        elif isinstance(event, TextDelta):
            text.append(event.text)
            shown = event.text
        elif isinstance(event, DatedLine):
            lines.append(event)
            day = event.day.isoformat() if event.day else UNKNOWN_DATE
            note = f"  ({event.note})" if event.note else ""
            shown = f"{day}  {event.text} [{event.number}]{note}\n"
        else:
            sources, shown = event, ""
        if not as_json:
            print(shown, end="", flush=True)
    assert sources is not None
    if as_json:
        print(
            json.dumps(
                _as_json({**header, "draft": draft}, "".join(text), lines, sources, passages),
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print("\n")
    for discrepancy in sources.discrepancies:
        print(discrepancy.line)
    for check in sources.unsupported:
        print(f"⚠ not supported by its sources: “{check.text}” ({check.reason})")
    if sources.stale:
        print(sources.stale)
    if stamp := as_of_line(sources):
        print(stamp)
    for citation in sources.citations:
        p = citation.passage
        print(f"[{citation.number}] {p.headline} | {p.outlet_name} | {p.day} | {p.url or p.article_id}")
        if len(citation.outlets) > 1:
            print(f"    reported by {len(citation.outlets)} outlets: {', '.join(citation.outlets)}")
        if updated := citation.updated_line:
            print(f"    {updated}")
    print(f"({sources.mode})")
    return 0


def _as_json(
    header: dict[str, object],
    answer: str,
    lines: list[DatedLine],
    sources: Sources,
    passages: Sequence[Passage],
) -> dict[str, object]:
    return {
        **header,
        "answer": answer,
        "lines": [
            {
                "date": line.day.isoformat() if line.day else None,
                "text": line.text,
                "citation": line.number,
                "note": line.note,
            }
            for line in lines
        ],
        "as_of": sources.newest.isoformat() if sources.newest else None,
        "stale_warning": sources.stale,
        "sentences": [
            {"text": c.text, "citations": list(c.citations), "supported": c.supported, "reason": c.reason}
            for c in sources.checks
        ],
        "discrepancies": [
            {
                "quantity": d.quantity,
                "line": d.line,
                "values": [
                    {
                        "value": v.value,
                        "written": v.written,
                        "outlet": v.outlet,
                        "date": v.day.isoformat() if v.day else None,
                        "citation": v.citation,
                        "earlier": v.earlier,
                        "newer": v.newer,
                    }
                    for v in d.values
                ],
            }
            for d in sources.discrepancies
        ],
        "mode": sources.mode,
        "removed_markers": sources.removed_markers,
        "citations": [
            {
                "number": c.number,
                **_describe(c.passage),
                "story_id": c.passage.story_id,
                "outlets": c.outlets,
                "other_reports": [
                    {"outlet": r.outlet, "published_at": r.published_at, "url": r.url, "title": r.title}
                    for r in c.other_reports
                ],
                "updates": {
                    "times": c.updates.times,
                    "last": c.updates.last,
                    "earlier": [{"content_hash": h, "date": d} for h, d in c.updates.earlier],
                }
                if c.updates
                else None,
                "passage": c.passage.text,
                "highlights": [c.passage.text[s:e] for s, e in c.highlights],
            }
            for c in sources.citations
        ],
        "passages": [{**_describe(p), "score": round(p.score, 6)} for p in passages],
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
