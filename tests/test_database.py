"""The catalog's database, the same through both dialects: SQLite in the data folder and a real PostgreSQL
server. What a write does is all there or not there at all, a list of values matches exactly those values,
and what ingest remembers of a web server's answers survives the connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from conftest import run_cli, write_articles
from ingest.web import FetchState
from rag.answer import ExtractiveAnswerer
from rag.config import Settings
from rag.conversation import ask
from rag.events import Sources
from rag.retrieve import Query, retrieve
from rag.store import StoreLockedError, open_store
from rag.store.database import CatalogDatabase, Database
from rag.store.postgres import PostgresDatabase
from rag.store.records import StoreError
from rag.store.sqlite import SQLiteDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Open connections to one database of each dialect (each test gets a new database)."""
    opened: list[Database] = []
    if request.param == "sqlite":
        make = lambda: SQLiteDatabase(tmp_path / "newsdesk.sqlite")  # noqa: E731
    else:
        url = request.getfixturevalue("database_url")
        make = lambda: PostgresDatabase(url)  # noqa: E731

    def open_one() -> Database:
        opened.append(make())
        return opened[-1]

    yield open_one
    for database in opened:
        database.close()


def test_a_failed_write_leaves_nothing_and_says_why(connect) -> None:  # type: ignore[no-untyped-def]
    db = connect()
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    with db.transaction():
        db.execute("INSERT INTO notes VALUES (?, ?)", (1, "kept"))
    with pytest.raises(ValueError, match="half way"), db.transaction():
        db.executemany("INSERT INTO notes VALUES (?, ?)", [(2, "lost"), (3, "lost too")])
        raise ValueError("killed half way")
    other = connect()  # what another process sees
    assert other.rows("SELECT id, text FROM notes ORDER BY id") == [(1, "kept")]


def test_a_write_is_seen_by_others_only_once_committed(connect) -> None:  # type: ignore[no-untyped-def]
    writer, reader = connect(), connect()
    writer.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    with writer.transaction():
        writer.execute("INSERT INTO notes VALUES (?, ?)", (1, "in progress"))
        assert reader.rows("SELECT id FROM notes") == []
    assert reader.rows("SELECT id FROM notes") == [(1,)]


def test_a_list_of_values_matches_exactly_those_and_keeps_their_order(connect) -> None:  # type: ignore[no-untyped-def]
    db = connect()
    db.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, pct TEXT)")
    names = ["harbor", "it's", 'say "no"', "50% off", "what?"]
    db.executemany("INSERT INTO notes VALUES (?, ?)", [(n, f"{i}%") for i, n in enumerate(names)])
    for wanted in (names[1:4], [], ["elsewhere"], names):
        test, values = db.in_list(wanted)
        found = db.rows(f"SELECT id FROM notes WHERE id {test} ORDER BY id", (values,))
        assert [row[0] for row in found] == sorted(set(wanted) & set(names))
    listed, values = db.listed(["elsewhere", *names[::-1]])  # in the order given, the first few of them
    found = db.rows(
        f"SELECT n.id FROM {listed} JOIN notes n ON n.id = listed.value ORDER BY listed.position LIMIT ?",
        (values, 3),
    )
    assert [row[0] for row in found] == names[::-1][:3]
    assert db.row("SELECT pct FROM notes WHERE id = ?", ("50% off",)) == ("3%",)


def test_what_a_server_said_is_remembered_and_replaced(connect) -> None:  # type: ignore[no-untyped-def]
    state = FetchState(connect())
    assert state.validators("https://news.example/feed") == (None, None)
    state.save({"https://news.example/feed": ('"v1"', "Mon, 30 Nov 2026 08:00:00 GMT")})
    state.save({"https://news.example/feed": ('"v2"', None), "https://news.example/b": (None, "Tue")})
    again = FetchState(connect())  # the next run
    assert again.validators("https://news.example/feed") == ('"v2"', None)
    assert again.validators("https://news.example/b") == (None, "Tue")


def test_an_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError, match="Could not connect to PostgreSQL at 127.0.0.1:9/") as raised:
        PostgresDatabase("postgresql://newsdesk:s3cret@127.0.0.1:9/news")
    assert "s3cret" not in str(raised.value)


REPORTS = [
    ("2024-03-04", "Harbor Times", "Ferry crews hired",
     "The harbor ferry will run every ten minutes from Monday after the city hired forty new crew members."),
    ("2024-03-05", "Coastal Post", "Library reopens",
     "The central library reopened after a renovation that added a children's wing and a rooftop garden."),
    ("2024-03-06", "Harbor Times", "Rail bridge closed",
     "Engineers closed the old rail bridge after finding cracks in two of its steel beams on Tuesday."),
    ("2024-03-07", "Valley News", "Orchestra wins",
     "The youth orchestra won the national competition with a programme of Brahms and Dvorak."),
    ("2024-03-08", "Coastal Post", "Stadium roof costs",
     "The stadium roof repairs will cost nine million dollars, the council said after a long debate."),
    ("2024-03-09", "Valley News", "New flights",
     "The airport added direct flights to Lisbon and Reykjavik from the spring, the operator announced."),
]  # fmt: skip
QUESTIONS = [
    ("How much will the stadium roof repairs cost?", "news/report-4.md"),
    ("Where will the airport fly to from the spring?", "news/report-5.md"),
    ("Why did engineers close the rail bridge?", "news/report-2.md"),
    ("Who won the national competition?", "news/report-3.md"),
]


def write_reports(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, (day, outlet, title, text) in enumerate(REPORTS):
        (folder / f"report-{n}.md").write_text(
            f"---\ntitle: {title}\noutlet: {outlet}\npublished: {day}\n---\n{text}\n", encoding="utf-8"
        )


def write_article(folder: Path, name: str, title: str, text: str, day: str) -> None:
    (folder / f"{name}.md").write_text(
        f"---\ntitle: {title}\noutlet: Harbor Times\npublished: {day}\n---\n{text}\n", encoding="utf-8"
    )


def both_catalogs(tmp_path: Path, database_url: str) -> dict[str, Settings]:
    """A store's settings with its catalog in SQLite and in PostgreSQL."""
    return {
        "sqlite": Settings(data_dir=tmp_path / "sqlite"),
        "postgres": Settings(data_dir=tmp_path / "postgres", database_url=database_url),
    }


def test_a_store_with_its_catalog_in_postgres_answers_as_one_in_sqlite(
    ingest, embedder, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    write_reports(folder)
    stores = both_catalogs(tmp_path, database_url)
    seen = {}
    for name, settings in stores.items():
        assert ingest(folder, settings=settings).new == len(REPORTS)
        assert ingest(folder, settings=settings).new == 0, "a second run finds nothing new"
        with open_store(settings) as store:
            firsts = []
            for question, gold in QUESTIONS:
                found = retrieve(Query(question, as_of=date(2024, 3, 31)), store=store, embedder=embedder,
                                 config=settings.retrieval)  # fmt: skip
                firsts.append(found.passages[0].article_id)
                assert found.passages[0].article_id == gold, (name, question)
            keyword = [p.article_id for p in store.keyword_search(["stadium", "roof"], k=3)]
            headline = [p.article_id for p in store.headline_search(["orchestra"], k=4)]
            overview = store.overview()
            ids = store.database.rows("SELECT chunk_id FROM passages")
            assert sorted(store.vector_ids()) == sorted(row[0] for row in ids)
            assert store.database.rows("SELECT article_id FROM pending") == []
        seen[name] = (
            firsts,
            keyword[:1],
            headline[:1],
            overview.articles,
            overview.passages,
            overview.outlets,
        )
    assert seen["postgres"] == seen["sqlite"]
    assert seen["postgres"][1:3] == (["news/report-4.md"], ["news/report-3.md"])

    (folder / "report-1.md").unlink()  # the outlet took it down
    ingest(folder, prune=True, settings=stores["postgres"])
    with open_store(stores["postgres"]) as store:
        assert "news/report-1.md" not in store.articles()
        assert store.overview().articles == len(REPORTS) - 1
        assert store.keyword_search(["library", "rooftop"], k=3) == []
    with open_store(stores["postgres"], rebuild=True) as store:  # emptied, counts and all
        assert store.overview().articles == 0 and store.vector_ids() == []
        assert store.keyword_search(["stadium", "roof"], k=3) == []
    assert ingest(folder, settings=stores["postgres"]).new == len(REPORTS) - 1


def test_ingest_runs_write_in_turns_and_prune_runs_alone(connect) -> None:  # type: ignore[no-untyped-def]
    """Two writers (on two machines, when the catalog is in PostgreSQL) run at once and take turns to
    write; what must run alone (prune, regroup, rebuild) is refused while another writer runs, and refuses
    them while it runs."""
    a, b = connect(), connect()
    with a.writer_lock(what="A", exclusive=False), b.writer_lock(what="B", exclusive=False):
        with pytest.raises(StoreLockedError, match="^B"), b.writer_lock(what="B", exclusive=True):
            pass
        turns: list[str] = []
        with a.write_turn():
            second = threading.Thread(target=take_turn, args=(b, turns))
            second.start()
            second.join(0.5)
            turns.append("a done")
        second.join(10)
        assert turns == ["a done", "b"], "a second writer wrote during the first one's turn"
    with (
        a.writer_lock(what="A", exclusive=True),
        pytest.raises(StoreLockedError, match="^B"),
        b.writer_lock(what="B", exclusive=False),
    ):
        pass
    with b.writer_lock(what="B", exclusive=True):  # once the first lets go
        pass


def take_turn(database: CatalogDatabase, turns: list[str]) -> None:
    with database.write_turn():
        turns.append("b")


def test_a_write_killed_half_way_is_undone_in_postgres(ingest, database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "news"
    write_reports(folder)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    ingest(folder, settings=settings)
    with open_store(settings) as store:  # as a run killed between its vectors and its catalog rows leaves it
        store._mark_pending({"news/report-2.md": {"2024-03"}})
    with open_store(settings) as store:
        assert store.recover() == ["news/report-2.md"]
        assert "news/report-2.md" not in store.articles()
        assert not [cid for cid in store.vector_ids() if cid.startswith("news/report-2.md")]
    assert ingest(folder, settings=settings).new == 1, "the next run writes it again"
    with open_store(settings) as store:
        ids = store.database.rows("SELECT chunk_id FROM passages")
        assert sorted(store.vector_ids()) == sorted(row[0] for row in ids)
        assert store.database.rows("SELECT article_id FROM pending") == []


def test_a_store_moves_its_catalog_to_postgres_and_answers_the_same(
    ingest, embedder, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    write_reports(folder)
    single = Settings(data_dir=tmp_path / "data")
    ingest(folder, settings=single)
    env = {"NEWSDESK_DATA_DIR": str(single.data_dir)}
    copied = run_cli("--copy-catalog-to", database_url, env=env)
    assert copied.returncode == 0, copied.stderr
    assert f"Copied {len(REPORTS)} articles" in copied.stdout and "NEWSDESK_DATABASE_URL" in copied.stdout
    shared = Settings(data_dir=single.data_dir, database_url=database_url)  # the same vectors

    def answers(settings: Settings) -> tuple[object, ...]:
        with open_store(settings) as store:
            store.database.check_indexes()
            found = [
                [p.chunk_id for p in retrieve(Query(question, as_of=date(2024, 3, 31)), store=store,
                                              embedder=embedder, config=settings.retrieval).passages]
                for question, _ in QUESTIONS
            ]  # fmt: skip
            return (
                found,
                store.articles(),
                store.overview(),
                store.periods(),
                [p.chunk_id for p in store.keyword_search(["library", "rooftop"], k=3)],
            )

    assert answers(shared) == answers(single)
    write_articles(folder / "more", 2)  # the copy goes on as a store of its own
    assert ingest(folder, settings=shared).new == 2
    again = run_cli("--copy-catalog-to", database_url, env=env)
    assert again.returncode == 2 and f"already holds {len(REPORTS) + 2} articles" in again.stderr


def test_a_search_while_a_write_commits_never_fails_on_the_counts(
    ingest, database_url: str, tmp_path: Path
) -> None:
    """A question reads the word counts and the index's size at one moment; were a word counted in more
    passages than the index held (as a write committed between two reads once made it), BM25's weight of
    that word would be the logarithm of a negative number."""
    folder = tmp_path / "news"
    write_reports(folder)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    ingest(folder, settings=settings)
    with open_store(settings) as store:
        store.database.execute("UPDATE passage_terms SET rows = rows + 1000 WHERE lexeme = 'stadium'")
        found = store.keyword_search(["stadium", "roof"], k=3)
    assert [p.article_id for p in found][:1] == ["news/report-4.md"]


def test_a_word_with_punctuation_inside_is_matched_as_a_phrase_and_scored_alike_in_both(
    ingest, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    write_reports(folder)
    for name, title, text in [
        ("plan", "A five-year plan for the harbour",
         "The council's five-year plan rebuilds the harbour wall; a five-year bond pays for it."),
        ("apart", "Five councillors, one year",
         "Five councillors served a year on the harbour board, and the council's year ended in March."),
        ("mayor", "Mayor's speech",
         "The mayor's speech named the harbour plan; mayor Reyes spoke for five minutes."),
    ]:  # fmt: skip
        write_article(folder, name, title, text, "2024-03-10")
    stores = both_catalogs(tmp_path, database_url)
    seen = {}
    for name, settings in stores.items():
        ingest(folder, settings=settings)
        with open_store(settings) as store:
            seen[name] = {
                terms: [(hit.article_id, hit.score) for hit in store.keyword_search(terms, k=10)]
                for terms in [("five-year",), ("five-year", "harbour"), ("mayor's",), ("council's", "wall")]
            }
            headlines = [hit.article_id for hit in store.headline_search(["five-year"], k=8)]
            assert headlines and set(headlines) == {"news/plan.md"}, name
    for terms, found in seen["sqlite"].items():
        assert [article for article, _ in seen["postgres"][terms]] == [article for article, _ in found], terms
        for (_, ours), (_, theirs) in zip(seen["postgres"][terms], found, strict=True):
            assert ours == pytest.approx(theirs, rel=1e-6), terms
    assert [article for article, _ in seen["postgres"][("five-year",)]] == ["news/plan.md"]
    assert [article for article, _ in seen["postgres"][("mayor's",)]] == ["news/mayor.md"]


def test_headlines_rank_alike_in_both_and_an_older_catalog_gets_their_postings(
    ingest, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    write_reports(folder)
    for name, title, text in [
        ("budget", "City council's budget: the harbour first", "The budget puts the harbour wall first."),
        ("vote", "Council votes on the city harbour, council says", "A vote on moorings is due in May."),
        ("roof", "Roof of the stadium", "Inspectors found the stadium's roof sound after the storm."),
    ]:
        write_article(folder, name, title, text, "2024-03-11")
    stores = both_catalogs(tmp_path, database_url)
    asked = [("orchestra",), ("stadium", "roof"), ("harbour", "council's"), ("city", "council")]

    def headlines(settings: Settings) -> dict[tuple[str, ...], list[tuple[str, int, float]]]:
        with open_store(settings) as store:
            store.database.check_indexes()
            return {
                terms: [
                    (hit.article_id, hit.chunk_index, hit.score) for hit in store.headline_search(terms, k=8)
                ]
                for terms in asked
            }

    seen = {}
    for name, settings in stores.items():
        ingest(folder, settings=settings)
        seen[name] = headlines(settings)
    assert all(seen["sqlite"].values()), "every question's words are in a headline"
    for terms, found in seen["sqlite"].items():
        ours = seen["postgres"][terms]
        assert [hit[:2] for hit in ours] == [hit[:2] for hit in found], terms
        assert [hit[2] for hit in ours] == pytest.approx([hit[2] for hit in found], rel=1e-6), terms

    # A catalog made before headlines had postings: opened, it gets them, and searches the same.
    database = PostgresDatabase(database_url)
    database.execute("DROP TABLE headline_postings")
    database.execute("COMMENT ON TABLE meta IS NULL")
    database.close()
    assert headlines(stores["postgres"]) == seen["postgres"]


def test_an_article_changed_under_its_id_keeps_its_earlier_versions_and_its_card_counts_them(
    ingest, embedder, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    text = "The harbour board approved a new ferry terminal on Monday, at a cost of 40 million pounds."
    for name, settings in both_catalogs(tmp_path, database_url).items():
        write_article(folder, "terminal", "Ferry terminal approved", text, "2024-03-04")
        ingest(folder, settings=settings)
        stored_on = {datetime.now(UTC).date().isoformat()}  # (the last version is stored today, UTC)
        for edit in ("at a cost of 45 million pounds.", "at a cost of 45 million pounds, the board said."):
            edited = text.replace("at a cost of 40 million pounds.", edit)
            write_article(folder, "terminal", "Ferry terminal approved", edited, "2024-03-04")
            assert ingest(folder, settings=settings).changed == 1
        ingest(folder, settings=settings)  # (unchanged: no version added)
        stored_on.add(datetime.now(UTC).date().isoformat())
        with open_store(settings) as store:
            updates = store.updates(["news/terminal.md"])["news/terminal.md"]
            assert updates.times == 2, name
            hashes = [h for h, _ in updates.earlier]
            assert len(set(hashes)) == 2 and store.articles()["news/terminal.md"].content_hash not in hashes
            asked = Query("What did the ferry terminal cost?", as_of=date(2024, 3, 31))
            answerer = ExtractiveAnswerer(settings.answer)
            turn = ask(asked, store=store, embedder=embedder, answerer=answerer, config=settings.retrieval)
            sources = next(e for e in turn.events if isinstance(e, Sources))
            (card,) = sources.citations
            assert card.updated_line in {f"updated 2 times, last {day}" for day in stored_on}, name
        (folder / "terminal.md").unlink()
        ingest(folder, prune=True, settings=settings)
        with open_store(settings) as store:  # an article taken down leaves no versions behind
            assert store.updates(["news/terminal.md"]) == {}
            assert store.database.rows("SELECT article_id FROM article_versions") == []
