"""Newsdesk in the browser: ask the stored news articles, every claim cited. `streamlit run app.py`"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import streamlit as st

from ingest.pipeline import ingest_sources
from ingest.sources import SourceSet, SourcesFileError, add_to_sources_file, read_sources_file
from rag.answer import Citation, Sources, TextDelta, answerer_for
from rag.citations import escape_markdown, highlight_html, safe_url
from rag.config import Settings, load_settings
from rag.conversation import ask
from rag.embeddings import embedding_model_for
from rag.retrieve import Query
from rag.store import open_store

UPLOAD_TYPES = ["txt", "md", "html", "json", "jsonl"]


@st.cache_resource(show_spinner="Opening the store…")
def resources(settings_json: str) -> tuple[Any, Any, Any]:
    """Build the store, the embedding model and the answerer once per process and settings."""
    config = Settings.model_validate_json(settings_json)
    return open_store(config), embedding_model_for(config), answerer_for(config)


def date_label(published_at: str | None) -> str:
    return published_at[:10] if published_at else "date unknown"


def show_sources(citations: list[Citation], mode: str) -> None:
    """Under an answer: each cited source with its headline, outlet, date, link and marked passage."""
    for citation in citations:
        passage = citation.passage
        label = (
            f"[{citation.number}] {escape_markdown(passage.title or 'No headline')} · "
            f"{escape_markdown(passage.outlet or 'unknown outlet')} · {date_label(passage.published_at)}"
        )
        with st.expander(label):
            if url := safe_url(passage.url):
                st.link_button("Open the article", url)
            st.caption(escape_markdown(passage.article_id))
            st.html(
                f'<div class="newsdesk-passage">{highlight_html(passage.text, citation.highlights)}</div>'
            )
    st.caption(f"Answered by: {mode}")


def show_turn(turn: dict[str, Any]) -> None:
    with st.chat_message("user"):
        st.text(turn["question"])
    with st.chat_message("assistant"):
        st.markdown(turn["answer_markdown"])
        show_sources(turn["citations"], turn["mode"])


def sidebar(config: Settings, store: Any, embedder: Any) -> dict[str, Any]:
    """The corpus at a glance, ingest and upload, filters; returns the filters chosen."""
    with st.sidebar:
        st.header("Corpus")
        overview = store.overview()
        st.write(
            f"{overview.articles} articles · {overview.passages} passages · {len(overview.outlets)} outlets"
        )
        if overview.earliest:
            st.write(f"Published {overview.earliest[:10]} to {overview.latest[:10]}")
        if overview.undated:
            st.write(f"{overview.undated} articles of unknown date")
        st.caption(f"Last ingest: {overview.last_ingest or 'never'} · folder {config.corpus_dir}")
        if st.button("Ingest new articles"):
            run_ingest(config, store, embedder, corpus_sources(config))
        uploads = st.file_uploader("Add article files", type=UPLOAD_TYPES, accept_multiple_files=True)
        if uploads:
            save_and_ingest(config, store, embedder, uploads)
        add_from_web(config, store, embedder)

        st.header("Filters")
        outlets = st.multiselect("Outlets", overview.outlets)
        period = st.date_input("Published between", value=[], format="YYYY-MM-DD")
        as_of = st.date_input("As of", value=date.today(), format="YYYY-MM-DD")
        if st.button("New chat"):
            st.session_state.turns = []
            st.rerun()
    since, until = (period + (None, None))[:2] if isinstance(period, tuple) else (period, None)
    return {"outlets": tuple(outlets), "since": since, "until": until, "as_of": as_of}


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
        if add_to_sources_file(config.sources_file, feed=url):
            st.caption(f"Added to {config.sources_file}; `python -m ingest --follow` polls it too.")
        run_ingest(config, store, embedder, SourceSet(feeds=(url,)))
    if fetch.button("Fetch article", disabled=not url):
        run_ingest(config, store, embedder, SourceSet(pages=(url,)))


def run_ingest(config: Settings, store: Any, embedder: Any, sources: SourceSet) -> None:
    fetching = sources.feeds or sources.pages
    bar = st.progress(0.0, text="Fetching and reading articles…" if fetching else "Reading articles…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Embedding {done}/{total} passages")

    summary = ingest_sources(
        sources, config=config, store=store, embedder=lambda: embedder, progress=progress
    )
    bar.progress(1.0, text="Done")
    st.session_state.ingest_summary = summary.render()


def save_and_ingest(config: Settings, store: Any, embedder: Any, uploads: list[Any]) -> None:
    """Save new uploads into the corpus folder and ingest them (once per file)."""
    done = st.session_state.setdefault("uploaded", set())
    folder = config.corpus_dir / "uploads"
    saved = []
    for upload in uploads:
        key = (upload.name, upload.size)
        name = Path(upload.name).name.lstrip(".")
        if key in done or not name:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(upload.getvalue())
        saved.append(folder / name)
        done.add(key)
    if saved:
        run_ingest(config, store, embedder, SourceSet(paths=tuple(saved)))


def main() -> None:
    st.set_page_config(page_title="Newsdesk", page_icon="🗞️")
    config = load_settings()
    store, embedder, answerer = resources(config.model_dump_json())
    filters = sidebar(config, store, embedder)
    st.title("Newsdesk")
    st.caption(f"Answers from your news articles, each claim cited · {answerer.mode}")
    if summary := st.session_state.get("ingest_summary"):
        st.sidebar.text(summary)

    turns = st.session_state.setdefault("turns", [])
    for turn in turns:
        show_turn(turn)
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
        )
        sources: list[Sources] = []

        def stream() -> Any:
            for event in asked.events:
                if isinstance(event, TextDelta):
                    yield escape_markdown(event.text)
                else:
                    sources.append(event)

        answer_markdown = st.write_stream(stream())
        show_sources(sources[0].citations, sources[0].mode)
    turns.append(
        {
            "question": question,
            "standalone": asked.standalone,
            "answer_markdown": answer_markdown,
            "citations": sources[0].citations,
            "mode": sources[0].mode,
        }
    )


main()
