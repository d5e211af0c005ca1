"""Plan an incremental run: compare the articles read now with the catalog of what is stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.text import Failure
from rag.documents import Article
from rag.store import StoredArticle


@dataclass
class Plan:
    """What a run will do to the store."""

    new: list[Article] = field(default_factory=list)
    changed: list[Article] = field(default_factory=list)
    unchanged: list[Article] = field(default_factory=list)
    duplicates: list[tuple[Article, str]] = field(default_factory=list)  # (article, id of the same text)
    remove: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def to_embed(self) -> list[Article]:
        """Articles whose passages must be embedded and written."""
        return self.new + self.changed


class StoredCatalog(Protocol):
    """What planning reads of the catalog: only the rows the articles read now ask about."""

    def articles(self, ids: Iterable[str] | None = None) -> dict[str, StoredArticle]: ...

    def articles_under(self, path: str) -> dict[str, StoredArticle]: ...

    def text_holders(self, text_hashes: Iterable[str]) -> dict[str, set[str]]: ...


def plan_run(
    read: Iterable[Article | Failure],
    stored: StoredCatalog,
    *,
    roots: Sequence[Path],
    prune: bool,
) -> Plan:
    """Classify every article read as new, changed, unchanged or duplicate, and find what to remove. The
    catalog is asked only about the articles read, their texts and (to prune) the folders read."""
    plan = Plan()
    seen: dict[str, str] = {}  # article id -> source, for this run
    pending: list[Article] = []
    for item in read:
        if isinstance(item, Failure):
            plan.failures.append(item)
        elif item.article_id in seen:
            plan.failures.append(
                Failure(item.source, f"same article id {item.article_id} as {seen[item.article_id]}; skipped")
            )
        else:
            seen[item.article_id] = item.source
            pending.append(item)
    if prune:
        under: dict[str, StoredArticle] = {}
        for root in roots:
            under |= stored.articles_under(str(root))
        plan.remove = _vanished(under, seen, roots=roots, failures=plan.failures)
    catalog = stored.articles(seen)
    holders = stored.text_holders(a.text_hash for a in pending)
    _classify(plan, pending, catalog, holders)
    return plan


def recheck(articles: list[Article], stored: StoredCatalog) -> Plan:
    """Classify articles planned for writing again, against the catalog as it is now: another ingest
    running at the same time may have stored one of them, or its text, since this run's plan was made."""
    plan = Plan()
    ids = [a.article_id for a in articles]
    _classify(plan, articles, stored.articles(ids), stored.text_holders(a.text_hash for a in articles))
    return plan


def _classify(
    plan: Plan,
    articles: list[Article],
    catalog: dict[str, StoredArticle],
    stored_holders: dict[str, set[str]],
) -> None:
    """Sort articles into the plan; equal texts are embedded once and the rest recorded as duplicates."""
    stored_embedded = {a.article_id for a in articles if _unchanged_original(a, catalog)}
    leaving = set(plan.remove) | ({a.article_id for a in articles} - stored_embedded)
    # Which article holds each text once this run is over.
    holders = {
        text_hash: min(staying) for text_hash, ids in stored_holders.items() if (staying := ids - leaving)
    }
    for article in articles:
        stored = catalog.get(article.article_id)
        holder = holders.get(article.text_hash)
        if article.article_id in stored_embedded or (
            stored is not None
            and stored.content_hash == article.content_hash
            and stored.duplicate_of is not None
            and holder == stored.duplicate_of
        ):
            plan.unchanged.append(article)
        elif holder is not None and holder != article.article_id:
            plan.duplicates.append((article, holder))
        else:
            holders[article.text_hash] = article.article_id
            (plan.new if stored is None else plan.changed).append(article)


def _unchanged_original(article: Article, catalog: dict[str, StoredArticle]) -> bool:
    stored = catalog.get(article.article_id)
    return stored is not None and stored.duplicate_of is None and stored.content_hash == article.content_hash


def _vanished(
    catalog: dict[str, StoredArticle],
    seen: dict[str, str],
    *,
    roots: Sequence[Path],
    failures: Sequence[Failure],
) -> list[str]:
    """Return stored articles from these roots whose file or record is gone (files that failed are kept)."""
    failed_files = {failure.source.split("#", 1)[0] for failure in failures if failure.keeps_stored}
    return sorted(
        entry.article_id
        for entry in catalog.values()
        if entry.article_id not in seen
        and entry.source.split("#", 1)[0] not in failed_files
        and any(_is_within(Path(entry.source.split("#", 1)[0]), root) for root in roots)
    )


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
