"""Run ingest: read sources, plan the change, embed what is new or changed, write it, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.articles import read_articles
from ingest.chunks import embedding_text, make_splitter, split_article
from ingest.feeds import WebReader
from ingest.plan import Plan, plan_run, recheck
from ingest.sources import SourceFile, SourceSet, discover_files
from ingest.stories import StoryIndex, group_stored
from ingest.text import Failure
from ingest.web import Fetcher, FetchState
from rag.config import Settings
from rag.documents import Article, Chunk, is_digest
from rag.store import ArticleWrite, Store

# Passages are sorted by length within each write group (Settings.write_group): across 1,024 passages,
# padding costs ~0.5% of the model's work; in groups of 64 in article order it costs ~4%.
MODEL_CALL = 64  # passages per call to the model, so progress moves while a group embeds

Progress = Callable[[int, int], None]  # (passages done, passages in all)


@dataclass
class Summary:
    """What a run did, for the user."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    duplicate: int = 0
    removed: int = 0
    recovered: int = 0
    regrouped: int = 0  # stored articles grouped into stories in this run (a store from before stories)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what each feed gave, e.g. "not modified"
    chunks_written: int = 0
    seconds: float = 0.0
    story_seconds: float = 0.0  # of which spent grouping articles into stories
    dry_run: bool = False

    @property
    def passages_per_second(self) -> float:
        return self.chunks_written / self.seconds if self.seconds else 0.0

    def one_line(self) -> str:
        """The summary of a poll, on one line."""
        return f"{self._counts()}; {self.chunks_written} passages in {self.seconds:.1f} s"

    def _counts(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.duplicate} duplicate, {self.removed} removed, {len(self.failures)} failed articles"
        )

    def render(self) -> str:
        """Return the summary as the lines printed at the end of a run."""
        verb = "would be" if self.dry_run else ""
        lines = [
            self._counts() + (f" ({verb} applied: dry run, nothing written)" if self.dry_run else ""),
            f"{self.chunks_written} passages {'to write' if self.dry_run else 'written'} in "
            f"{self.seconds:.1f} s ({self.passages_per_second:.1f} passages/s)",
        ]
        lines += self.notes
        if self.regrouped:
            lines.append(f"{self.regrouped} stored articles grouped into stories")
        if self.recovered:
            lines.append(f"{self.recovered} articles left half-written by an interrupted run were redone")
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines += [f"failed: {failure.source}: {failure.reason}" for failure in self.failures]
        return "\n".join(lines)


def ingest_paths(paths: Sequence[Path], **options: Any) -> Summary:
    """ingest_sources for folders and files only."""
    return ingest_sources(SourceSet(paths=tuple(paths)), **options)


def ingest_sources(
    sources: SourceSet,
    *,
    config: Settings,
    store: Store,
    embedder: Callable[[], BaseEmbedding],
    prune: bool = False,
    dry_run: bool = False,
    regroup: bool = False,
    progress: Progress | None = None,
) -> Summary:
    """Bring the store in step with the articles in the folders and files, feeds and pages of `sources`;
    only new or changed articles are embedded.

    `embedder` is called only when something needs embedding, so an unchanged corpus never loads the model.
    Each article stored is grouped into its story as it is written; `regroup` groups every article again.
    """
    paths, feeds, pages = sources.paths, sources.feeds, sources.pages
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="microseconds")
    with store.writing(exclusive=prune or regroup), ExitStack() as resources:
        roots = [path.resolve() if path.is_dir() else path.absolute() for path in paths]
        files = discover_files(roots)
        recovered = [] if dry_run else store.recover()
        web, fetch_state = None, None
        if feeds or pages:
            fetch_state = FetchState(store.database)
            web = WebReader(resources.enter_context(Fetcher(config)), store, fetch_state.validators)
        read = chain(_read_all(files, config), web.read(list(pages), list(feeds)) if web else ())
        plan = plan_run(read, store, roots=roots, prune=prune)
        splitter = make_splitter(config)
        pieces = {a.article_id: split_article(a, splitter) for a in plan.to_embed}
        summary = _summarise(plan, pieces, recovered, dry_run=dry_run)
        if web:
            summary.unchanged += web.unchanged
            summary.notes += web.notes
        if not dry_run:
            store.remove(plan.remove)
            if regroup:
                store.clear_stories()
            stories = StoryIndex(config.stories, store)
            summary.regrouped = group_stored(store, stories)
            _embed_and_write(
                plan,
                pieces,
                store=store,
                embedder=embedder,
                stories=stories,
                progress=progress,
                group=config.write_group,
                run=started_at,
            )
            store.record_duplicates(
                plan.duplicates,
                stories={a.article_id: stories.duplicate_link(o) for a, o in plan.duplicates},
                run=started_at,
            )
            summary.story_seconds = stories.seconds
            if web and fetch_state and web.validators:  # only now that what they vouch for is stored
                fetch_state.save(web.validators)
    summary.seconds = time.perf_counter() - started
    return summary


def _read_all(sources: Sequence[SourceFile], config: Settings) -> Iterator[Article | Failure]:
    for source in sources:
        yield from read_articles(source, config=config)


def _summarise(plan: Plan, pieces: dict[str, list[Chunk]], recovered: list[str], *, dry_run: bool) -> Summary:
    read = plan.new + plan.changed + plan.unchanged + [a for a, _ in plan.duplicates]
    return Summary(
        new=len(plan.new),
        changed=len(plan.changed),
        unchanged=len(plan.unchanged),
        duplicate=len(plan.duplicates),
        removed=len(plan.remove),
        recovered=len(recovered),
        failures=list(plan.failures),
        warnings=[f"{a.source}: {w}" for a in read for w in a.warnings],
        chunks_written=sum(len(chunks) for chunks in pieces.values()),
        dry_run=dry_run,
    )


def _embed_and_write(
    plan: Plan,
    pieces: dict[str, list[Chunk]],
    *,
    store: Store,
    embedder: Callable[[], BaseEmbedding],
    stories: StoryIndex,
    progress: Progress | None,
    group: int,
    run: str,
) -> None:
    total = sum(len(chunks) for chunks in pieces.values())
    if not total and not plan.to_embed:
        return
    model = embedder()
    changed = {a.article_id for a in plan.changed}
    done = 0
    bar = _progress_bar(total)
    # Oldest first, so that a story is started by its first report and joined by the later ones.
    ordered = sorted(plan.to_embed, key=_publish_order)
    for articles in _groups(ordered, pieces, size=group):
        texts = [embedding_text(a, chunk) for a in articles for chunk in pieces[a.article_id]]
        vectors: list[list[float]] = [[] for _ in texts]
        for batch in _length_sorted_batches(texts):
            embedded = model.get_text_embedding_batch([texts[i] for i in batch])
            for i, vector in zip(batch, embedded, strict=True):
                vectors[i] = vector
            done += len(batch)
            bar.update(len(batch))
            if progress:
                progress(done, total)
        ready: list[tuple[Article, Sequence[Chunk], Sequence[Sequence[float]]]] = []
        offset = 0
        for article in articles:
            chunks = pieces[article.article_id]
            ready.append((article, chunks, vectors[offset : offset + len(chunks)]))
            offset += len(chunks)
        store_embedded(ready, store=store, stories=stories, replacing=changed, run=run)
    bar.close()


def store_embedded(
    embedded: Sequence[tuple[Article, Sequence[Chunk], Sequence[Sequence[float]]]],
    *,
    store: Store,
    stories: StoryIndex,
    replacing: set[str] | frozenset[str] = frozenset(),
    run: str | None = None,
) -> None:
    """Group embedded articles (article, passages, their vectors; oldest first) into their stories and
    write them to the store in one journalled write: all that ingest does beyond reading and the model.
    Done in the store's turn, against the catalog as it is then: what another ingest stored meanwhile is
    not written twice."""
    with store.turn():
        if store.others_wrote:
            stories.reload()
        now = recheck([article for article, _, _ in embedded], store)
        writing = {a.article_id for a in now.to_embed}
        writes = []
        for article, chunks, vectors in embedded:
            if article.article_id not in writing:
                continue
            story = stories.assign(
                article.article_id,
                published=article.published_at.date() if article.published_at else None,
                passages=[chunk.text for chunk in chunks],
                lead_vector=vectors[0] if vectors else None,
                passage_vectors=vectors,
                digest=is_digest(article.title),
            )
            writes.append(ArticleWrite(article, chunks, vectors, story))
        store.write(writes, replacing=replacing, run=run)
        store.record_duplicates(
            now.duplicates,
            stories={a.article_id: stories.duplicate_link(o) for a, o in now.duplicates},
            run=run,
        )


def _publish_order(article: Article) -> tuple[bool, str, str]:
    published = article.published_at
    return (published is None, published.date().isoformat() if published else "", article.article_id)


def _length_sorted_batches(texts: list[str]) -> Iterator[list[int]]:
    """Yield indexes of texts in batches of similar length (characters stand in for tokens)."""
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(by_length), MODEL_CALL):
        yield by_length[start : start + MODEL_CALL]


def _groups(articles: list[Article], pieces: dict[str, list[Chunk]], *, size: int) -> Iterator[list[Article]]:
    """Yield consecutive articles holding about `size` passages together."""
    group: list[Article] = []
    count = 0
    for article in articles:
        group.append(article)
        count += len(pieces[article.article_id])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _progress_bar(total: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, unit="passage", desc="Embedding", disable=None, leave=False)
