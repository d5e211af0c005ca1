"""Newsdesk in the browser: ask the stored news articles, every claim cited. `streamlit run app.py`"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import streamlit as st

from ingest.pipeline import ingest_sources
from ingest.sources import SourceSet, SourcesFileError, add_to_sources_file, read_sources_file, save_upload
from ingest.web import FetchError
from rag.answer import answerer_for
from rag.citations import escape_markdown, highlight_html, safe_url
from rag.config import Settings, load_settings
from rag.conversation import ask
from rag.documents import date_label, outlet_label
from rag.embeddings import embedding_model_for
from rag.events import DatedLine, Revised, Sources, TextDelta
from rag.retrieve import Query
from rag.store import Report, StoreError, open_store
from rag.stories import as_of_line, brief, format_day, since_updated

UPLOAD_TYPES = ["txt", "md", "html", "json", "jsonl"]
OTHERS_SHOWN = 10  # other articles of a story listed on a source card


@st.cache_resource(show_spinner="Opening the store…")
def resources(settings_json: str) -> tuple[Any, Any, Any]:
    """Build the store, the embedding model and the answerer once per process and settings."""
    config = Settings.model_validate_json(settings_json)
    return open_store(config), embedding_model_for(config), answerer_for(config)


def show_sources(sources: Sources, store: Any = None) -> None:
    """Under an answer: how fresh it is, then each cited source with its headline, outlet, date, link,
    marked passage and the other outlets that reported its story. An earlier answer (given `store`) says
    which of its quoted sentences an article has since dropped."""
    for note in since_updated(sources, store) if store is not None else []:
        st.warning(escape_markdown(note), icon="🔄")
    for discrepancy in sources.discrepancies:
        st.info(escape_markdown(discrepancy.line), icon="⚖️")
    for check in sources.unsupported:
        why = escape_markdown(check.reason or "")
        st.warning(f"Not supported by its sources: “{escape_markdown(check.text)}” ({why})", icon="⚠️")
    if sources.stale:
        st.warning(sources.stale)
    if stamp := as_of_line(sources):
        st.caption(stamp)
    for citation in sources.citations:
        passage = citation.passage
        outlets = citation.outlets
        label = (
            f"[{citation.number}] {escape_markdown(passage.headline)} · "
            f"{escape_markdown(passage.outlet_name)} · {passage.day}"
            + (f" · reported by {len(outlets)} outlets" if len(outlets) > 1 else "")
            + (f" · {citation.updated_line}" if citation.updated_line else "")
        )
        with st.expander(label):
            if url := safe_url(passage.url):
                st.link_button("Open the article", url)
            st.caption(escape_markdown(passage.article_id))
            st.html(
                f'<div class="newsdesk-passage">{highlight_html(passage.text, citation.highlights)}</div>'
            )
            if others := citation.other_reports:
                shown = "\n".join(map(report_line, others[:OTHERS_SHOWN]))
                more = len(others) - OTHERS_SHOWN
                st.markdown(
                    "**Also reported in this story:**\n"
                    + shown
                    + (f"\n\n…and {more} more" if more > 0 else "")
                )
    st.caption(f"Answered by: {sources.mode}")


def report_line(report: Report) -> str:
    """One other article of a story as a Markdown list item: outlet, date, headline linked to it."""
    title = escape_markdown(report.title or "the article")
    url = safe_url(report.url)
    link = f"[{title}]({url.replace('(', '%28').replace(')', '%29')})" if url else title
    return f"- {escape_markdown(outlet_label(report.outlet))} · {date_label(report.published_at)} · {link}"


def lines_markdown(lines: list[DatedLine]) -> str:
    """A timeline or a brief as a Markdown list: a date, a line of article text, its citation."""
    return "\n".join(
        f"- **{format_day(line.day) if line.day else 'Date unknown'}** — {escape_markdown(line.text)} "
        f"[{line.number}]" + (f" · *{escape_markdown(line.note)}*" if line.note else "")
        for line in lines
    )


def show_events(events: Any) -> tuple[str, list[DatedLine], Sources]:
    """Stream an answer's text, then its dated lines; return what was shown and its sources."""
    lines: list[DatedLine] = []
    sources: list[Sources] = []
    revised: list[Revised] = []

    def stream() -> Any:
        for event in events:
            if isinstance(event, TextDelta):
                yield escape_markdown(event.text)
            elif isinstance(event, DatedLine):
                lines.append(event)
            elif isinstance(event, Revised):
                revised.append(event)
            else:
                sources.append(event)

    slot = st.empty()
    text = slot.write_stream(stream())
    if revised:  # the check found unsupported sentences and the model rewrote them: the rewrite replaces it
        many = "sentence was" if revised[0].unsupported == 1 else "sentences were"
        text = escape_markdown(revised[-1].text)  # citations given, then a rewrite: the last is shown
        slot.markdown(text)
        with st.expander(
            f"Revised after checking: {revised[0].unsupported} {many} not supported by its sources"
        ):
            st.markdown(escape_markdown(revised[0].draft))
    markdown = (text if isinstance(text, str) else "") + ("\n\n" if text and lines else "")
    if lines:
        st.markdown(lines_markdown(lines))
        markdown += lines_markdown(lines)
    show_sources(sources[0])
    return markdown, lines, sources[0]


def show_turn(turn: dict[str, Any], store: Any) -> None:
    with st.chat_message("user"):
        st.text(turn["question"])
    with st.chat_message("assistant"):
        st.markdown(turn["answer_markdown"])
        show_sources(turn["sources"], store)


def sidebar(config: Settings, store: Any, embedder: Any) -> dict[str, Any]:
    """The corpus at a glance, ingest and upload, filters; returns the filters chosen."""
    with st.sidebar:
        st.header("Corpus")
        overview = store.overview()
        st.write(overview.size_line())
        if overview.earliest:
            st.write(f"Published {overview.earliest[:10]} to {overview.latest[:10]}")
        if overview.undated:
            st.write(f"{overview.undated:,} articles of unknown date")
        last = overview.last_ingest[:16].replace("T", " ") + " UTC" if overview.last_ingest else "never"
        st.caption(f"Last ingest: {last}")
        # What the button reads: this app's folder, which need not be what the store was built from.
        reads = f"Reads the folder {config.corpus_dir} and the sources file"
        if st.button("Ingest new articles", help=reads):
            run_ingest(config, store, embedder, corpus_sources(config))
        uploads = st.file_uploader("Add article files", type=UPLOAD_TYPES, accept_multiple_files=True)
        if uploads:
            save_and_ingest(config, store, embedder, uploads)
        add_from_web(config, store, embedder)

        st.header("Filters")
        outlets = st.multiselect("Outlets", overview.outlets)
        period = st.date_input("Published between", value=[], format="YYYY-MM-DD")
        as_of = st.date_input("As of", value=date.today(), format="YYYY-MM-DD")
        view = st.radio("View", ["Ask", "What's new"], horizontal=True)
        if st.button("New chat"):
            st.session_state.turns = []
            st.rerun()
    since, until = (period + (None, None))[:2] if isinstance(period, tuple) else (period, None)
    return {"outlets": tuple(outlets), "since": since, "until": until, "as_of": as_of, "view": view}


def corpus_sources(config: Settings) -> SourceSet:
    """The corpus folder, and the folders, feeds and pages of the sources file when there is one."""
    listed = SourceSet()
    if config.sources_file.exists():
        try:
            listed = read_sources_file(config.sources_file)
        except SourcesFileError as error:
            st.error(str(error))
    return SourceSet((config.corpus_dir, *listed.paths), listed.feeds, listed.pages)


def add_from_web(config: Settings, store: Any, embedder: Any) -> None:
    """A feed to follow (added to the sources file) or an article page to fetch once."""
    url = st.text_input("Feed or article URL", placeholder="https://…").strip()
    follow, fetch = st.columns(2)
    if follow.button("Follow feed", disabled=not url):
        follow_feed(config, store, embedder, url)
    if fetch.button("Fetch article", disabled=not url):
        run_ingest(config, store, embedder, SourceSet(pages=(url,)))


def follow_feed(config: Settings, store: Any, embedder: Any, url: str) -> None:
    """Add a feed to the sources file and ingest it; an address that would be refused is not saved."""
    try:
        added = add_to_sources_file(config.sources_file, feed=url, config=config)
    except (FetchError, SourcesFileError) as error:
        st.error(f"Not followed, nothing saved: {escape_markdown(url)}: {escape_markdown(str(error))}")
        return
    if added:
        st.caption(f"Added to {config.sources_file}; `python -m ingest --follow` polls it too.")
    run_ingest(config, store, embedder, SourceSet(feeds=(url,)))


def run_ingest(config: Settings, store: Any, embedder: Any, sources: SourceSet) -> None:
    fetching = sources.feeds or sources.pages
    bar = st.progress(0.0, text="Fetching and reading articles…" if fetching else "Reading articles…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Embedding {done}/{total} passages")

    try:
        summary = ingest_sources(
            sources, config=config, store=store, embedder=lambda: embedder, progress=progress
        )
    except StoreError as error:  # another ingest holds the store: nothing was read or written
        bar.empty()
        st.session_state.ingest_summary = f"Not ingested: {error}"
        return
    bar.progress(1.0, text="Done")
    st.session_state.ingest_summary = summary.render()


def save_and_ingest(config: Settings, store: Any, embedder: Any, uploads: list[Any]) -> None:
    """Save new uploads into the corpus folder and ingest them (once per file)."""
    done = st.session_state.setdefault("uploaded", set())
    saved = []
    for upload in uploads:
        key = (upload.name, upload.size)
        if key in done or not Path(upload.name).name.lstrip("."):
            continue
        try:
            saved.append(save_upload(config.corpus_dir, upload.name, upload.getvalue()))
        except (OSError, ValueError) as error:
            st.sidebar.error(f"{upload.name} was not saved: {error}")
        done.add(key)
    if saved:
        run_ingest(config, store, embedder, SourceSet(paths=tuple(saved)))


def main() -> None:
    st.set_page_config(page_title="Newsdesk", page_icon="🗞️")
    config = load_settings()
    store, embedder, answerer = resources(config.model_dump_json())
    filters = sidebar(config, store, embedder)
    view = filters.pop("view")
    st.title("Newsdesk")
    st.caption(f"Answers from your news articles, each claim cited · {answerer.mode}")
    if summary := st.session_state.get("ingest_summary"):
        st.sidebar.text(summary)

    if view == "What's new":
        whats_new(config, store, as_of=filters["as_of"])
        return
    turns = st.session_state.setdefault("turns", [])
    for turn in turns:
        show_turn(turn, store)
    question = st.chat_input("Ask about the news")
    if not question:
        return
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        asked = ask(
            Query(question, **filters),
            history=[t["standalone"] for t in turns],
            store=store,
            embedder=embedder,
            answerer=answerer,
            config=config.retrieval,
            stories=config.stories,
            answering=config.answer,
        )
        answer_markdown, _, sources = show_events(asked.events)
    turns.append(
        {
            "question": question,
            "standalone": asked.standalone,
            "answer_markdown": answer_markdown,
            "sources": sources,
        }
    )


def whats_new(config: Settings, store: Any, *, as_of: date) -> None:
    """The new and updated stories of the last ingest, or since a date, biggest first, each cited."""
    st.subheader("What's new")
    choice = st.radio("Stories", ["From the last ingest", "Published since…"], horizontal=True)
    since = None
    if choice != "From the last ingest":
        since = st.date_input("Since", value=as_of, format="YYYY-MM-DD")
    covers, events = brief(store, since=since, as_of=as_of, config=config.stories)
    st.caption(f"Stories {covers}")
    show_events(events)


main()
