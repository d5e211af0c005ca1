"""The store laid out in time: a Chroma collection a month, catalog rows numbered by publish day, what each
period holds counted as it is written; a question searches the periods it reaches and stops when older
ones cannot outrank what it found; a store from before this layout is brought to it in place."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from conftest import snapshot
from rag.answer import ExtractiveAnswerer
from rag.config import Settings, with_overrides
from rag.conversation import ask
from rag.retrieve import Query, retrieve
from rag.store import UNDATED, PassageFilter, Store, open_store
from rag.store.periods import DAY_BITS, period_of, rowid_ranges
from rag.store.records import CHROMA_KEYS

TOPICS = [
    ("harbor", "The harbor authority approved a new ferry terminal with twelve berths for cargo ships."),
    ("library", "The city library extended its opening hours to ten at night on weekdays."),
    ("orchestra", "The youth orchestra won the national competition with a programme of Brahms."),
    ("tram", "Night trams will run every twenty minutes after the transit agency hired drivers."),
    ("museum", "The natural history museum opened a hall of fossils found in the quarry."),
    ("bakery", "A family bakery on Mill Street celebrated one hundred years of bread and pastry."),
    ("stadium", "The stadium roof repairs will cost nine million dollars, the council said."),
    ("airport", "The airport added direct flights to Lisbon and Reykjavik from the spring."),
]


def write_month(folder: Path, day: str, *, count: int, prefix: str) -> None:
    """`count` short articles on different subjects published on one day."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, (subject, text) in enumerate(TOPICS[:count]):
        (folder / f"{prefix}-{subject}.md").write_text(
            f"---\ntitle: {subject.title()} news from {prefix}\noutlet: Town Crier\npublished: {day}\n---\n"
            f"{text} Officials in {prefix} confirmed the {subject} plan on {day}, item {n}.\n"
        )


def counted(store: Store) -> dict[str, int]:
    """Passages per period, counted from the catalog itself."""
    rows = store.db.execute(
        "SELECT a.published_ts FROM passages p JOIN articles a ON a.article_id = p.article_id"
    ).fetchall()
    return dict(Counter(period_of(ts) for (ts,) in rows))


def shelved(store: Store) -> dict[str, list[str]]:
    """The passage ids each shelf's collection holds."""
    return {
        shelf: sorted(c.get(include=[])["ids"]) for shelf, c in store.collections(store.periods()).items()
    }


def test_a_small_store_keeps_a_decade_on_one_shelf(ingest, config, tmp_path) -> None:
    folder = tmp_path / "news"
    write_month(folder, "2024-01-10", count=3, prefix="jan")
    write_month(folder, "2021-03-05", count=2, prefix="mar")
    ingest(folder)
    with open_store(config) as store:
        assert {shelf: len(ids) for shelf, ids in shelved(store).items()} == {"2020s": 5}


def test_periods_are_kept_as_articles_are_written_moved_and_removed(ingest, tmp_path) -> None:
    config = Settings(data_dir=tmp_path / "data", shelf_size=3)  # shelves split as soon as they hold 4
    folder = tmp_path / "news"
    write_month(folder, "2024-01-10", count=3, prefix="jan")
    write_month(folder, "2024-03-05", count=2, prefix="mar")
    (folder / "undated.md").write_text("---\ntitle: Pier notice\n---\nThe pier closes for painting.\n")
    ingest(folder, settings=config)
    with open_store(config) as store:
        assert store.periods() == counted(store) == {"2024-01": 3, "2024-03": 2, UNDATED: 1}
        # The decade held 5 (more than 3): split into years; 2024 held 5: split into months.
        assert {shelf: len(ids) for shelf, ids in shelved(store).items()} == {
            "2024-01": 3,
            "2024-03": 2,
            UNDATED: 1,
        }
        rowids = store.db.execute("SELECT rowid, published_ts FROM articles").fetchall()
        for rowid, published_ts in rowids:  # each row in its publish day's range
            (low, high), *_ = rowid_ranges([period_of(published_ts)])
            assert low <= rowid <= high and (published_ts is None) == (rowid >> DAY_BITS == 0)

    moved = folder / "jan-harbor.md"  # the outlet corrects its date: it moves to March
    moved.write_text(moved.read_text().replace("published: 2024-01-10", "published: 2024-03-06"))
    (folder / "jan-library.md").unlink()
    ingest(folder, prune=True, settings=config)
    with open_store(config) as store:
        assert store.periods() == counted(store) == {"2024-01": 1, "2024-03": 3, UNDATED: 1}
        overview = store.overview()  # from the kept counts, as the app's sidebar shows it
        assert (overview.articles, overview.passages, overview.undated) == (5, 5, 1)
        assert overview.outlets == ["Town Crier"]
        assert (overview.earliest or "")[:10] == "2024-01-10" and (overview.latest or "")[:10] == "2024-03-06"
        assert shelved(store)["2024-01"] == ["news/jan-orchestra.md::0"], "a moved or removed article stayed"
        assert store._client.list_collections()  # the split decade and year left no collection behind
        names = {c.name for c in store._client.list_collections()}
        assert names == {f"{config.collection}-{shelf}" for shelf in ("2024-01", "2024-03", UNDATED)}
    # Nor their index folders, which embedded Chroma leaves on disk when a collection is deleted.
    folders = [entry for entry in (config.data_dir / "chroma").iterdir() if entry.is_dir()]
    assert len(folders) == 3, sorted(entry.name for entry in folders)
    state = snapshot(config)
    assert state.vectors == state.passages and state.pending == []


@pytest.fixture
def searched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The periods whose vectors each search reads, in order."""
    seen: list[str] = []
    nearest = Store._nearest

    def spy(self: Store, vector, period: str, **options):  # type: ignore[no-untyped-def]
        seen.append(period)
        return nearest(self, vector, period, **options)

    monkeypatch.setattr(Store, "_nearest", spy)
    return seen


def ranked(config: Settings, embedder, question: str, *, as_of: date, window: int) -> list[str]:  # type: ignore[no-untyped-def]
    settings = with_overrides(config, [f"window_passages={window}"]).model_copy(update={"shelf_size": 4})
    with open_store(settings) as store:
        found = retrieve(
            Query(question, as_of=as_of), store=store, embedder=embedder, config=settings.retrieval
        )
    return [p.chunk_id for p in found.passages]


@pytest.mark.parametrize(
    ("question", "as_of", "reached"),
    [
        # A named period: its month, then no further (the rest weigh 0.3 at most).
        ("What did officials decide about the stadium roof in March?", date(2024, 6, 20), ["2024-03"]),
        # No period: the newest months first, and no older once they cannot outrank what was found.
        ("What did officials decide about the stadium roof?", date(2024, 6, 20), ["2024-06"]),
    ],
)
def test_a_question_reads_the_periods_it_reaches_and_finds_what_searching_all_finds(
    ingest, config, embedder, tmp_path, searched, question, as_of, reached
) -> None:
    folder = tmp_path / "news"
    for day, prefix in [
        ("2022-03-09", "old"),
        ("2023-11-20", "nov"),
        ("2024-03-12", "mar"),
        ("2024-06-18", "jun"),
    ]:
        write_month(folder, day, count=len(TOPICS), prefix=prefix)
    ingest(folder, settings=config.model_copy(update={"shelf_size": 4}))  # a shelf a month

    everything = ranked(config, embedder, question, as_of=as_of, window=10**9)
    assert set(searched) == {"2022-03", "2023-11", "2024-03", "2024-06"}
    searched.clear()
    windowed = ranked(config, embedder, question, as_of=as_of, window=1)
    assert searched == reached
    # The same passages, the best first; below it, the order may differ, since a passage's rank in each
    # list is counted among the passages searched.
    assert set(windowed) == set(everything) and windowed[0] == everything[0]
    assert windowed[0].startswith(f"news/{'mar' if 'March' in question else 'jun'}-stadium")


def test_an_older_period_that_only_passages_found_by_both_searches_could_enter_is_not_ranked_in_full(
    ingest, config, embedder, tmp_path, monkeypatch
) -> None:
    # Weeks before the question, a passage must be found by both the vector and the keyword search to
    # outrank what June gave (the headline list weighing as much as each): May's keyword scores go only to
    # the passages its vector search found. Years before, nothing can: 2022 is not searched.
    folder = tmp_path / "news"
    for day, prefix in [("2022-03-09", "old"), ("2024-05-20", "may"), ("2024-06-18", "jun")]:
        write_month(folder, day, count=len(TOPICS), prefix=prefix)
    ingest(folder, settings=config.model_copy(update={"shelf_size": 4}))
    config = with_overrides(config, ["headline_weight=1.0"])
    question, as_of = "What did officials decide about the stadium roof?", date(2024, 6, 20)
    everything = ranked(config, embedder, question, as_of=as_of, window=10**9)

    calls: list[tuple[str, list[str]]] = []
    for name in ("keyword_search", "keyword_scores"):
        method = getattr(Store, name)

        def spy(self: Store, *args, _method=method, _name=name, **options):  # type: ignore[no-untyped-def]
            calls.append((_name, list(options["periods"])))
            return _method(self, *args, **options)

        monkeypatch.setattr(Store, name, spy)
    windowed = ranked(config, embedder, question, as_of=as_of, window=1)
    assert calls == [("keyword_search", ["2024-06"]), ("keyword_scores", ["2024-05"])]
    assert set(windowed) == set(everything) and windowed[0] == everything[0]
    assert windowed[0].startswith("news/jun-stadium")


def test_a_question_naming_a_period_reads_no_month_past_the_window_that_holds_it(
    ingest, config, embedder, tmp_path, searched
) -> None:
    # April is the period asked about; June (after it) and 2022 weigh 0.3 or less. One window a month: the
    # question reads April alone, though it finds fewer passages than it wants, and so it reads no more
    # however large the archive behind.
    folder = tmp_path / "news"
    for day, prefix in [("2022-03-09", "old"), ("2024-04-12", "apr"), ("2024-06-18", "jun")]:
        write_month(folder, day, count=3, prefix=prefix)
    ingest(folder, settings=config.model_copy(update={"shelf_size": 4}))
    question = "What did the harbor authority approve in April?"
    found = ranked(config, embedder, question, as_of=date(2024, 6, 20), window=1)
    assert searched == ["2024-04"]
    assert found[0] == "news/apr-harbor.md::0" and len(found) == 3
    searched.clear()
    undated = ranked(
        config, embedder, "What did the harbor authority approve?", as_of=date(2024, 6, 20), window=1
    )
    assert searched[:2] == ["2024-06", "2024-04"], (
        "a question naming no period goes on while passages are few"
    )
    assert len(undated) == 6
    # Past the vectors' reach, older months are searched by their words alone: April's harbor report is
    # still found, though April's vectors are not read.
    searched.clear()
    reach = with_overrides(config, ["vector_passages=1"])
    words = ranked(
        reach, embedder, "What did the harbor authority approve?", as_of=date(2024, 6, 20), window=1
    )
    assert searched == ["2024-06"]
    assert "news/apr-harbor.md::0" in words and words[0] == undated[0]


@pytest.mark.both_catalogs
def test_the_keyword_scores_of_chosen_passages_are_those_the_keyword_search_gives(
    ingest, config, tmp_path
) -> None:
    folder = tmp_path / "news"
    for day, prefix in [("2023-11-20", "nov"), ("2024-03-12", "mar")]:
        write_month(folder, day, count=len(TOPICS), prefix=prefix)
    (folder / "mar-stadium-again.md").write_text(
        "---\ntitle: Stadium roof, again\noutlet: Town Crier\npublished: 2024-03-14\n---\n"
        "The stadium roof's five-year warranty ran out; the stadium roof leaks, and the council's roof "
        "budget is spent.\n"
    )
    ingest(folder)
    terms = ["stadium", "roof", "council's", "five-year", "mill"]
    with open_store(config) as store:
        ranked_in_full = store.keyword_search(terms, k=50)
        by_id = {hit.chunk_id: hit.score for hit in ranked_in_full}
        assert len(by_id) >= 4 and "news/mar-stadium-again.md::0" in by_id
        unmatched = store.vector_search([1.0] * store.dimension, k=50)
        chosen = [*ranked_in_full[::2], *(hit for hit in unmatched if hit.chunk_id not in by_id)]
        scored = store.keyword_scores(terms, chosen)
    assert {hit.chunk_id for hit in scored} == {hit.chunk_id for hit in ranked_in_full[::2]}
    for hit in scored:
        assert hit.score == pytest.approx(by_id[hit.chunk_id], rel=1e-9)
    assert [hit.score for hit in scored] == sorted((hit.score for hit in scored), reverse=True)


def test_a_store_from_before_the_layout_is_laid_out_in_place(ingest, config, embedder, tmp_path) -> None:
    folder = tmp_path / "news"
    write_month(folder, "2024-01-10", count=3, prefix="jan")
    write_month(folder, "2024-03-05", count=3, prefix="mar")
    ingest(folder)
    before = snapshot(config)
    with open_store(config) as store:  # as an older Newsdesk left it: one collection, rows in writing order
        single = store._client.create_collection(config.collection, embedding_function=None)
        for collection in store.collections(store.periods()).values():
            got = collection.get(include=["embeddings", "metadatas"])
            texts = [f"the text of {cid}, which Chroma kept then" for cid in got["ids"]]
            single.add(ids=got["ids"], embeddings=got["embeddings"], documents=texts,
                       metadatas=[{**m, "title": "kept then"} for m in got["metadatas"]])  # fmt: skip
            store._client.delete_collection(collection.name)
        with store._transaction():
            for table in ("articles", "passages"):
                store.db.execute(f"UPDATE {table} SET rowid = -rowid")
                rows = store.db.execute(f"SELECT rowid FROM {table} ORDER BY rowid DESC").fetchall()
                store.db.executemany(
                    f"UPDATE {table} SET rowid = ? WHERE rowid = ?",
                    [(n + 1, r) for n, (r,) in enumerate(rows)],
                )
            store.db.execute("INSERT INTO passages_fts(passages_fts) VALUES ('rebuild')")
            store.db.execute("INSERT INTO headlines_fts(headlines_fts) VALUES ('rebuild')")
            store.db.execute("DROP TABLE periods")
            store.db.execute("DELETE FROM meta WHERE key = 'layout'")

    after = snapshot(config)  # opening it lays it out
    assert after == before
    with open_store(config) as store:
        assert store.periods() == counted(store) == {"2024-01": 3, "2024-03": 3}
        assert store._client.list_collections() and config.collection not in [
            c.name for c in store._client.list_collections()
        ]
        for collection in store.collections(store.periods()).values():  # the old copies of texts are left
            got = collection.get(include=["documents", "metadatas"])
            assert set(got["documents"]) == {None}
            assert all({"article_id", "chunk_index", "published_ts"} <= m.keys() <= set(CHROMA_KEYS)
                       for m in got["metadatas"])  # fmt: skip
        turn = ask(
            Query("How many berths will the new ferry terminal have?", as_of=date(2024, 3, 31)),
            store=store,
            embedder=embedder,
            answerer=ExtractiveAnswerer(config.answer),
            config=config.retrieval,
        )
        assert "twelve berths" in "".join(getattr(e, "text", "") for e in turn.events)
    assert "0 new, 0 changed, 6 unchanged" in ingest(folder).render()


def test_a_search_of_months_before_the_as_of_date_needs_no_date_filter() -> None:
    """An archive's shelves, all published before the question's as-of date, are searched without the
    filter (and without fetching extra passages to make up for it); the month of the as-of date, an
    outlet filter or an explicit range that leaves out the undated still filter."""
    as_of = PassageFilter(as_of=datetime(2024, 3, 10, 23, 59, 59, tzinfo=UTC).timestamp())
    assert as_of.keeps_all(["2023-11", "2024-02", UNDATED])
    assert not as_of.keeps_all(["2024-02", "2024-03"]), "the as-of month holds articles published after it"
    assert PassageFilter(as_of=datetime(2024, 4, 1, tzinfo=UTC).timestamp()).keeps_all(["2024-03"])
    assert not PassageFilter(outlets=("Harbor Times",)).keeps_all(["2023-11"])
    since = PassageFilter(since=datetime(2023, 11, 1, tzinfo=UTC).timestamp())
    assert since.keeps_all(["2023-11", "2024-01"]) and not since.keeps_all(["2023-10"])
    assert not since.keeps_all([UNDATED]), "an explicit range leaves out the undated"
