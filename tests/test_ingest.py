"""Ingest end to end: incremental runs, edits, pruning, duplicates and bad input, on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SEEDS, keyword_hits, run_cli, snapshot, write_articles
from ingest.pipeline import ingest_paths
from rag.config import Settings
from rag.store import EmbeddingModelMismatch, Store, StoreLockedError, open_store

SEED_ID = "seeds/000_c957ac075bc0a49a.txt"

pytestmark = pytest.mark.both_catalogs


def test_seed_is_stored_once_and_a_rerun_embeds_nothing(ingest, config, embedder) -> None:
    first = ingest(SEEDS)
    assert (first.new, first.changed, first.failures) == (1, 0, [])
    assert first.chunks_written >= 1

    calls_before = embedder.calls
    loads: list[int] = []
    before = snapshot(config)

    with open_store(config) as store:
        writes = store._writes_counted()
        again = ingest_paths(
            [SEEDS], config=config, store=store, embedder=lambda: loads.append(1) or embedder
        )
        assert store._writes_counted() == writes, "an unchanged rerun wrote to the store"
    assert snapshot(config) == before
    assert (again.new, again.changed, again.unchanged, again.chunks_written) == (0, 0, 1, 0)
    assert embedder.calls == calls_before, "an unchanged article was embedded again"
    assert loads == [], "the embedding model was loaded although nothing changed"

    state = snapshot(config)
    assert list(state.catalog) == [SEED_ID]
    assert state.vectors == state.passages and len(state.vectors) == first.chunks_written
    assert keyword_hits(config, "Kazakhstan") != []


def test_cli_on_seeds_then_rerun_reports_nothing_new(tmp_path: Path) -> None:
    env = {"NEWSDESK_DATA_DIR": str(tmp_path / "data")}
    first = run_cli(str(SEEDS), env=env)
    assert first.returncode == 0, first.stderr
    assert "1 new, 0 changed" in first.stdout
    assert "now holds 1 articles" in first.stdout

    second = run_cli(str(SEEDS), env=env)
    assert second.returncode == 0, second.stderr
    assert "0 new, 0 changed, 1 unchanged" in second.stdout
    assert "0 passages written" in second.stdout


def test_shorter_edit_leaves_no_tail_passages(ingest, config, tmp_path) -> None:
    folder = tmp_path / "news"
    (path,) = write_articles(folder, 1, paragraphs=20)
    ingest(folder)
    long_state = snapshot(config)
    article_id = next(iter(long_state.catalog))
    assert len(long_state.vectors_of(article_id)) >= 3

    path.write_text("---\ntitle: Town 0 votes\n---\nThe council postponed the vote on the bridge.\n")
    summary = ingest(folder)
    assert (summary.new, summary.changed) == (0, 1)
    state = snapshot(config)
    assert state.vectors_of(article_id) == [f"{article_id}::0"]
    assert state.passages == state.vectors
    assert keyword_hits(config, "postponed") == [f"{article_id}::0"]
    assert keyword_hits(config, "million") == []


def test_prune_removes_a_deleted_article_everywhere(ingest, config, tmp_path) -> None:
    folder = tmp_path / "news"
    kept, gone = write_articles(folder, 2)
    ingest(folder)
    assert keyword_hits(config, "8") == ["news/story-001.md::0"]
    gone.unlink()

    without_prune = ingest(folder)
    assert without_prune.removed == 0
    assert len(snapshot(config).catalog) == 2, "articles must only be removed when asked"

    summary = ingest(folder, prune=True)
    assert summary.removed == 1
    state = snapshot(config)
    assert list(state.catalog) == ["news/story-000.md"]
    assert all(v.startswith("news/story-000.md::") for v in state.vectors)
    assert state.passages == state.vectors
    assert keyword_hits(config, "8") == [], "town 1's bridge number 8 is still found"


def test_prune_keeps_articles_of_other_folders_and_of_failed_files(ingest, config, tmp_path) -> None:
    write_articles(tmp_path / "a", 1)
    write_articles(tmp_path / "b", 1)
    ingest(tmp_path / "a")
    ingest(tmp_path / "b")
    (tmp_path / "b" / "story-000.md").write_bytes(b"")  # now broken: its stored version stays

    summary = ingest(tmp_path / "b", prune=True)
    assert summary.removed == 0 and len(summary.failures) == 1
    assert set(snapshot(config).catalog) == {"a/story-000.md", "b/story-000.md"}


def test_identical_text_is_recorded_as_duplicate_not_embedded_twice(
    ingest, config, embedder, tmp_path
) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    text = (SEEDS / "000_c957ac075bc0a49a.txt").read_text()
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text)
    before = embedder.calls
    summary = ingest(folder)
    assert (summary.new, summary.duplicate) == (1, 1)
    state = snapshot(config)
    assert state.catalog["news/b.txt"][2] == "news/a.txt"
    assert state.vectors_of("news/b.txt") == []
    assert embedder.calls - before == len(state.vectors_of("news/a.txt"))

    # When the original goes, the duplicate takes its place.
    (folder / "a.txt").unlink()
    summary = ingest(folder, prune=True)
    assert summary.removed == 1
    state = snapshot(config)
    assert state.catalog["news/b.txt"][2] is None
    assert state.vectors_of("news/b.txt")


def test_same_id_twice_in_one_run_keeps_the_first(ingest, config, tmp_path) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    records = [
        {"doc_id": "https://example.com/a", "title": "First", "text": "Rain fell on the capital all day."},
        {"doc_id": "https://example.com/a", "title": "Again", "text": "Snow fell on the capital all day."},
        {"doc_id": "https://example.com/b", "title": "Other", "text": "The harbour reopened after repairs."},
    ]
    (folder / "items.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    summary = ingest(folder)
    assert summary.new == 2
    assert len(summary.failures) == 1
    assert "https://example.com/a" in summary.failures[0].reason
    assert keyword_hits(config, "snow") == [] and keyword_hits(config, "rain")


def test_bad_inputs_are_reported_and_the_rest_is_stored(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_articles(folder, 2)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    (folder / "broken.json").write_text('{"title": "x", "text": ')
    (folder / "notext.jsonl").write_text('{"title": "No body here"}\n')
    (folder / "gone.txt").symlink_to(folder / "missing-target.txt")
    (folder / "latin.txt").write_bytes(
        "Caf\xe9 owners in the old town protest the new rent rules.".encode("cp1252")
    )
    result = run_cli(str(folder), env={"NEWSDESK_DATA_DIR": str(tmp_path / "data")})

    assert result.returncode == 1, "a failed input must show in the exit status"
    assert "3 new" in result.stdout
    assert "5 failed articles" in result.stdout
    for name in ("empty.txt", "binary.txt", "broken.json", "notext.jsonl", "gone.txt"):
        assert f"failed: {folder / name}" in result.stdout, name
    assert "warning:" in result.stdout and "latin.txt" in result.stdout
    assert "now holds 3 articles" in result.stdout


def test_dry_run_writes_nothing(ingest, config, tmp_path) -> None:
    folder = tmp_path / "news"
    write_articles(folder, 3)
    summary = ingest(folder, dry_run=True)
    assert summary.new == 3 and summary.chunks_written > 0
    assert "dry run" in summary.render()
    state = snapshot(config)
    assert state.catalog == {} and state.vectors == []


def test_rebuild_starts_over(tmp_path: Path) -> None:
    env = {"NEWSDESK_DATA_DIR": str(tmp_path / "data")}
    assert run_cli(str(SEEDS), env=env).returncode == 0
    rebuilt = run_cli("--rebuild", str(SEEDS), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1 new, 0 changed" in rebuilt.stdout


def test_store_built_with_another_model_is_refused_with_how_to_rebuild(config: Settings) -> None:
    with open_store(config):
        pass
    with pytest.raises(EmbeddingModelMismatch, match="--rebuild"):
        Store(config, model_name="some-other-model", dimension=768)


def passages_stored(data: Path, **chunking: int) -> int:
    with open_store(Settings(data_dir=data, **chunking)) as store:  # type: ignore[arg-type]
        return store.overview().passages


def test_changed_passage_size_is_refused_until_the_store_is_rebuilt(tmp_path: Path) -> None:
    env = {"NEWSDESK_DATA_DIR": str(tmp_path / "data")}
    assert run_cli(str(SEEDS), env=env).returncode == 0
    before = passages_stored(tmp_path / "data")
    resized = {**env, "NEWSDESK_CHUNK_TOKENS": "120", "NEWSDESK_CHUNK_OVERLAP": "10"}
    refused = run_cli(str(SEEDS), env=resized)
    assert refused.returncode == 2 and "0 changed" not in refused.stdout
    assert "cut to 200 tokens with 30 shared" in refused.stderr and "--rebuild" in refused.stderr
    rebuilt = run_cli("--rebuild", str(SEEDS), env=resized)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1 new, 0 changed" in rebuilt.stdout
    # The store now holds the smaller passages, and the old size is the one refused.
    assert passages_stored(tmp_path / "data", chunk_tokens=120, chunk_overlap=10) > before
    assert run_cli(str(SEEDS), env=env).returncode == 2


def test_embedded_store_refuses_a_second_process(config: Settings, tmp_path: Path) -> None:
    with open_store(config):
        result = run_cli(str(SEEDS), env={"NEWSDESK_DATA_DIR": str(config.data_dir)})
        with pytest.raises(StoreLockedError):
            open_store(config)
    assert result.returncode == 2
    assert "Another Newsdesk process" in result.stderr and "CHROMA_HOST" in result.stderr


def test_openai_embeddings_when_configured_and_model_switch_is_refused(tmp_path: Path) -> None:
    from openai_server import openai_server

    env = {"NEWSDESK_DATA_DIR": str(tmp_path / "data"), "NEWSDESK_EMBEDDING_BACKEND": "openai"}
    with openai_server() as server:
        env |= {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": server.url}  # type: ignore[attr-defined]
        result = run_cli(str(SEEDS), env=env)
        assert result.returncode == 0, result.stderr
        assert "1 new" in result.stdout
        embedded = [body for path, body in server.requests if path.endswith("/embeddings")]
        assert embedded and embedded[0]["model"] == "text-embedding-3-small"

    local = run_cli(str(SEEDS), env={"NEWSDESK_DATA_DIR": str(tmp_path / "data")})
    assert local.returncode == 2
    assert "text-embedding-3-small" in local.stderr and "--rebuild" in local.stderr


def test_a_reader_thread_never_sees_an_article_half_written(config, embedder, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The app's session threads share the store with an upload's ingest: a read waits for the write's
    transaction instead of seeing its catalog row before its passages."""
    import threading

    write_articles(tmp_path / "news", 1, paragraphs=6)
    inside, go = threading.Event(), threading.Event()
    seen: list[tuple[int, int]] = []
    with open_store(config) as store:
        insert = store._insert_article

        def slow_insert(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            insert(*args, **kwargs)  # the article's row, in the transaction, before its passages
            inside.set()
            go.wait(10)

        monkeypatch.setattr(store, "_insert_article", slow_insert)
        writer = threading.Thread(
            target=ingest_paths, args=([tmp_path / "news"],), kwargs={"config": config, "store": store,
                                                                       "embedder": lambda: embedder}
        )  # fmt: skip
        writer.start()
        assert inside.wait(60)

        def read() -> None:
            articles = store.articles()
            seen.append((len(articles), sum(len(t) for t in store.passage_texts(list(articles)).values())))

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(0.5)
        still_waiting = reader.is_alive()
        go.set()
        writer.join(30)
        reader.join(30)
        stored = sum(len(t) for t in store.passage_texts(list(store.articles())).values())
    assert still_waiting, "the read went through in the middle of the write's transaction"
    assert seen == [(1, stored)] and stored >= 1


def test_symbolic_links_never_lead_ingest_out_of_the_folder(ingest, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(
        "Secret title\n\nThe vault code is 4471 and the safe is behind the mirror."
    )
    (outside / "notes").mkdir()
    (outside / "notes" / "diary.md").write_text(
        "# Diary\n\nThe password of the router is hunter2, dear diary."
    )
    news = tmp_path / "news"
    (real,) = write_articles(news, 1)
    (news / "secret.txt").symlink_to(outside / "secret.txt")
    (news / "notes").symlink_to(outside / "notes", target_is_directory=True)
    (news / "again.txt").symlink_to(real)  # a link that stays inside: read once, as the article itself
    (news / "loop.txt").symlink_to(news / "loop.txt")

    summary = ingest(news)

    reasons = {Path(f.source).name: f.reason for f in summary.failures}
    assert set(reasons) == {"secret.txt", "notes", "loop.txt"}
    assert reasons["secret.txt"].startswith("symbolic link leads outside the folder")
    assert reasons["notes"].startswith("symbolic link leads outside the folder")
    assert "loop" in reasons["loop.txt"]
    state = snapshot(config)
    assert list(state.catalog) == [f"news/{real.name}"] and summary.new == 1
    assert keyword_hits(config, "vault") == [] and keyword_hits(config, "router") == []

    # The target of the inside link goes: --prune removes its article, and nothing else is stored.
    real.unlink()
    pruned = ingest(news, prune=True)
    assert pruned.removed == 1 and snapshot(config).catalog == {}


def test_an_upload_never_writes_through_a_link_out_of_the_corpus_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ingest.sources import save_upload

    outside = tmp_path / "system"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    corpus = tmp_path / "corpus"
    (corpus / "uploads").mkdir(parents=True)
    (corpus / "uploads" / "story.txt").symlink_to(outside / "passwd")

    saved = save_upload(corpus, "story.txt", b"Ferry strike ends\n\nThe crews returned on Monday.")
    assert not saved.is_symlink() and saved.read_bytes().startswith(b"Ferry strike ends")
    assert (outside / "passwd").read_text() == "root:x:0:0"

    (corpus / "uploads" / "story.txt").unlink()
    (corpus / "uploads").rmdir()
    (corpus / "uploads").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="leads outside the corpus folder"):
        save_upload(corpus, "passwd", b"overwritten")
    assert (outside / "passwd").read_text() == "root:x:0:0"
