"""The catalog in PostgreSQL, for a store that several machines share: ingest workers and app replicas.

The keyword and headline indexes are `tsvector` columns (English stemming) with GIN indexes, ranked by BM25
as SQLite's FTS5 ranks them: the statistics BM25 needs that PostgreSQL does not keep (how many passages
hold each word, how long each passage is, their total) are kept by triggers as rows are written, so a
search reads only the rows that match its words, never the whole index.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from rag.store.database import CatalogDatabase
from rag.store.postgres_schema import SCHEMA, TABLES
from rag.store.records import StoreError, StoreLockedError


class PostgresDatabase(CatalogDatabase):
    """One connection to a PostgreSQL database: outside `transaction()` each statement commits on its own;
    inside, PostgreSQL's default isolation (read committed) holds."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._stems: dict[str, list[str]] = {}
        self._phrases: dict[tuple[str, str], int] = {}  # (index, phrase) -> rows holding it
        self._phrases_of: dict[str, tuple[int, int]] = {}  # each index's rows and tokens when counted
        self._lock_connection: psycopg.Connection[Any] | None = None
        try:
            # Room to sort and group a question's postings in memory (PostgreSQL's default is 4 MB), and a
            # plan for each statement's own values: psycopg prepares a statement run five times, and the plan
            # PostgreSQL then keeps for any values made a headline search take 32 ms at p50 instead of 4.5.
            self.connection = psycopg.connect(
                url, autocommit=True, connect_timeout=10,
                options="-c work_mem=32MB -c plan_cache_mode=force_custom_plan",
            )  # fmt: skip
        except psycopg.OperationalError as error:
            where = url.split("@")[-1]  # never the password
            raise StoreError(f"Could not connect to PostgreSQL at {where}: {error}".strip()) from error

    @contextmanager
    def writer_lock(self, *, what: str, exclusive: bool) -> Iterator[None]:
        """An advisory lock of the database: every machine's writers take it, and a process that dies lets
        it go with its connection."""
        mode = "" if exclusive else "_shared"
        held = self._locks().execute(f"SELECT pg_try_advisory_lock{mode}(%s)", (WRITER_LOCK,)).fetchone()
        if not (held and held[0]):
            raise StoreLockedError(f"{what} (held by another process using this PostgreSQL database).")
        try:
            yield
        finally:
            self._unlock(f"pg_advisory_unlock{mode}", WRITER_LOCK)

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        self._locks().execute("SELECT pg_advisory_lock(%s)", (WRITE_TURN,))
        try:
            yield
        finally:
            self._unlock("pg_advisory_unlock", WRITE_TURN)

    def _locks(self) -> psycopg.Connection[Any]:
        """The connection that holds this process's advisory locks, apart from its reads and writes."""
        if self._lock_connection is None or self._lock_connection.closed:
            self._lock_connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._lock_connection

    def _unlock(self, function: str, key: int) -> None:
        if self._lock_connection is not None and not self._lock_connection.closed:
            self._lock_connection.execute(f"SELECT {function}(%s)", (key,))

    def columns(self, table: str) -> list[str]:
        rows = self.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [row[0] for row in rows]

    def in_list(self, values: Sequence[Any]) -> tuple[str, Any]:
        return "= ANY(?)", list(values)

    def listed(self, values: Sequence[str]) -> tuple[str, Any]:
        # (a join to the array's rows, not `= ANY(array)`: PostgreSQL plans the latter element by element)
        return "unnest(?::text[]) WITH ORDINALITY AS listed(value, position)", list(values)

    def close(self) -> None:
        self.connection.close()
        if self._lock_connection is not None:
            self._lock_connection.close()  # any lock still held goes with it

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.connection.execute(_placeholders(sql), params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        self.connection.execute(_placeholders(sql), params)

    def _executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), params)

    def _begin(self) -> None:
        self.connection.execute("BEGIN")

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    # The tables

    def create_tables(self) -> None:
        """Make the tables, or bring them to this version's schema; a catalog already at it is left alone:
        replacing its triggers takes locks that readers and writers of other processes would wait on."""
        version = hashlib.sha256("\n".join(SCHEMA).encode()).hexdigest()[:16]
        if self.row("SELECT obj_description(to_regclass('meta'), 'pg_class')") == (version,):
            return  # (the version is the meta table's comment: its rows are the store's own, schema.py)
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))  # two openers never race
            for statement in SCHEMA:
                self.execute(statement)
            self.execute(f"COMMENT ON TABLE meta IS '{version}'")

    def check_indexes(self) -> None:
        """The words and lengths BM25 reads from the kept counts, against the indexed rows themselves."""
        for index, table, terms, length in (
            ("passage", "passages", "terms", "length"),
            ("headline", "articles", "title_terms", "title_length"),
        ):
            counts = f"{index}_terms"
            wrong = self.rows(
                "SELECT coalesce(held.lexeme, kept.lexeme) FROM "
                f"(SELECT lexeme, count(*) AS rows FROM {table}, unnest({terms}) GROUP BY lexeme) AS held "
                f"FULL JOIN (SELECT * FROM {counts} WHERE rows <> 0) AS kept ON kept.lexeme = held.lexeme "
                "WHERE held.rows IS DISTINCT FROM kept.rows LIMIT 5"
            )
            totals = self.row(
                f"SELECT (SELECT count(*) FROM {table}) - coalesce(t.rows, 0), "
                f"(SELECT coalesce(sum({length}), 0) FROM {table}) - coalesce(t.tokens, 0) "
                f"FROM (SELECT 1) AS one LEFT JOIN bm25_totals AS t ON t.index_name = ?",
                (index,),
            )
            if wrong or totals != (0, 0):
                raise StoreError(f"The {index} keyword counts disagree with the rows: {wrong or totals}")
            postings = self.row(
                f"SELECT (SELECT count(*) FROM {index}_postings) "
                f"- (SELECT coalesce(sum(length({terms})), 0) FROM {table})"
            )
            if postings != (0,):
                raise StoreError(f"The {index} postings disagree with the rows' words by {postings}")

    def settle(self) -> None:
        """Vacuum and analyse the tables a bulk load filled: a search then reads the postings' index
        alone, and the planner knows how many rows each table holds."""
        for index in ("passage", "headline"):
            for table in (f"{index}_postings", f"{index}_terms"):
                self.execute(f"VACUUM (ANALYZE) {table}")
        for table in ("passages", "articles"):
            self.execute(f"VACUUM (ANALYZE) {table}")

    def drop_tables(self) -> None:
        with self.transaction():
            for table in (*TABLES, "fetch_state"):
                self.execute(f"DROP TABLE IF EXISTS {table} CASCADE")

    def renumber_rows(self) -> None:
        """Nothing to do: a PostgreSQL catalog has numbered its rows by publish day from the start."""

    # Keyword and headline search (BM25 over tsvector columns)

    def match_terms(self, terms: Sequence[str]) -> list[str]:
        """The terms as the index holds them: a word's Porter stem, and for a word with punctuation inside
        ("five-year", "Trump's") its stems in order, joined by spaces: a phrase, matched where they stand one
        after another, as FTS5 matches it. Asked of PostgreSQL once per word and remembered, as a question's
        searches ask for the same words again."""
        missing = [term for term in dict.fromkeys(terms) if term not in self._stems]
        if missing:
            if len(self._stems) > 50_000:
                self._stems.clear()
            found = self.rows(
                "SELECT t.term, u.lexeme, u.positions FROM unnest(?::text[]) AS t(term), "
                "unnest(newsdesk_words(t.term)) AS u",
                (missing,),
            )
            placed: dict[str, list[tuple[int, str]]] = {term: [] for term in missing}
            for word, lexeme, positions in found:
                placed[word] += [(position, lexeme) for position in positions]
            for term in missing:
                self._stems[term] = [lexeme for _, lexeme in sorted(placed[term])]
        phrases = (" ".join(stems) for term in terms if (stems := self._stems[term]))
        return [phrase for phrase in dict.fromkeys(phrases) if _PHRASE.fullmatch(phrase)]

    def common_terms(self, terms: Sequence[str], ranges: Sequence[tuple[int, int]], limit: int) -> set[str]:
        """A term in no more than `limit` passages of the whole index is not counted within the ranges: the
        word's kept count says so (a phrase's, counted once for BM25: `_phrase_rows`). The others' words
        are counted in one statement."""
        words = [term for term in terms if " " not in term]
        phrases = [term for term in terms if " " in term]
        common: set[str] = set()
        if words and ranges:
            within = " UNION ALL ".join(
                "(SELECT 1 FROM passage_postings p WHERE p.lexeme = t.lexeme AND p.rowid BETWEEN ? AND ? "
                "LIMIT ?)" for _ in ranges
            )  # fmt: skip
            bounds = [bound for low, high in ranges for bound in (low, high, limit + 1)]
            counted = f"(SELECT count(*) FROM (SELECT * FROM ({within}) AS u LIMIT ?) AS c)"
            found = self.rows(
                "SELECT t.lexeme FROM unnest(?::text[]) AS t(lexeme) JOIN passage_terms k USING (lexeme) "
                f"WHERE k.rows > ? AND {counted} > ?",
                (words, limit, *bounds, limit + 1, limit),
            )
            common.update(row[0] for row in found)
        if phrases and ranges:
            totals = self.row("SELECT rows, tokens FROM bm25_totals WHERE index_name = 'passage'") or (0, 0)
            for phrase in phrases:
                if self._phrase_rows("passage", phrase, (int(totals[0]), int(totals[1]))) <= limit:
                    continue
                parts = [self._phrase_in("passage", phrase, ("p.rowid BETWEEN ? AND ?", [*rows]), 1.0)
                         for rows in ranges]  # fmt: skip
                within = " UNION ALL ".join(f"({sql} LIMIT ?)" for sql, _ in parts)
                count = self.row(
                    f"SELECT count(*) FROM (SELECT * FROM ({within}) AS u LIMIT ?) AS c",
                    (*(p for _, params in parts for p in (*params, limit + 1)), limit + 1),
                )
                if count and count[0] > limit:
                    common.add(phrase)
        return common

    def keyword_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        pool: int, k: int, title_weight: float,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        if not terms:
            return []
        ranked = self._ranked("passage", terms, rows, None if pool < 0 else pool, title_weight=title_weight)
        joined = "JOIN passages p ON p.rowid = r.rowid JOIN articles a ON a.article_id = p.article_id"
        return self._ranked_rows(ranked, columns, joined, where, "r.score DESC", k)

    def keyword_scores(
        self, terms: Sequence[str], chunk_ids: Sequence[str], *, title_weight: float
    ) -> dict[str, float]:
        if not terms or not chunk_ids:
            return {}
        sql, params = self._ranked("passage", terms, None, None, title_weight=title_weight, among=chunk_ids)
        scored = f"{sql} SELECT p.chunk_id, r.score FROM ranked r JOIN passages p USING (rowid)"
        found = self.rows(scored, params)
        return {chunk: float(score) for chunk, score in found}

    def headline_rows(
        self, columns: str, terms: Sequence[str], rows: tuple[int, int], where: tuple[str, list[Any]], *,
        articles: int, k: int,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        if not terms:
            return []
        ranked = self._ranked("headline", terms, rows, articles)
        # (in the passages' collation, so that their index on article_id serves the join)
        joined = "JOIN articles a ON a.rowid = r.rowid JOIN passages p ON p.article_id = (a.article_id"
        joined += ' COLLATE "default")'
        return self._ranked_rows(ranked, columns, joined, where, "r.score DESC, p.chunk_index", k)

    def _ranked_rows(
        self, ranked: tuple[str, list[Any]], columns: str, joined: str, where: tuple[str, list[Any]],
        order: str, k: int,
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        """The k best of the `ranked` rows (`_ranked`), joined to their passages and articles and filtered."""
        (sql, params), (clauses, filters) = ranked, where
        return self.rows(
            f"{sql} SELECT {columns}, r.score FROM ranked r {joined} "
            f"WHERE TRUE {clauses} ORDER BY {order} LIMIT ?",
            (*params, *filters, k),
        )

    def _ranked(
        self, index: str, terms: Sequence[str], rows: tuple[int, int] | None, limit: int | None, *,
        title_weight: float = 1.0, among: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:  # fmt: skip
        """A WITH clause naming `ranked` (rowid, score): the `limit` rows of a range of an index ("passage"
        or "headline") that best match any of the terms (`match_terms`) by BM25, best first; and its
        parameters. Only the postings of the terms are read (what FTS5 reads, not the rows' whole vectors).
        The passage index can be read for some passages (`among`, their chunk ids) instead of a range: each
        of their postings is found by the index."""
        idf, average = self._statistics(index, terms)
        words = [term for term in terms if " " not in term]
        which: tuple[str, list[Any]] = (
            ("p.rowid IN (SELECT rowid FROM passages WHERE chunk_id = ANY(?::text[]))", [list(among)])
            if among else ("p.rowid BETWEEN ? AND ?", list(rows or (0, 0)))
        )  # fmt: skip
        parts: list[tuple[str, list[Any]]] = []
        if words:
            parts.append((f"{_WORDS.format(index=index)} AND {which[0]}", [title_weight, words, *which[1]]))
        parts += [self._phrase_in(index, term, which, title_weight) for term in terms if " " in term]
        matched = " UNION ALL ".join(sql for sql, _ in parts)
        sql = f"""WITH q AS (SELECT unnest(?::text[]) AS lexeme, unnest(?::float8[]) AS idf),
            m AS ({matched}),
            ranked AS (SELECT m.rowid, sum({_BM25}) AS score FROM m JOIN q USING (lexeme)
                       GROUP BY m.rowid ORDER BY score DESC LIMIT ?)"""
        params = [list(idf), list(idf.values()), *(p for _, given in parts for p in given), average, limit]
        return sql, params

    def _phrase_in(
        self, index: str, phrase: str, which: tuple[str, list[Any]], title_weight: float
    ) -> tuple[str, list[Any]]:
        """SELECT (rowid, length, lexeme: the phrase, tf) of the rows of an index ("passage" or "headline")
        among those `which` picks of its postings (alias p) where a phrase stands, tf as the postings' (the
        headline's × title weight + the text's). The postings of its rarest stem lead; each other stem's
        posting of the same row is looked up, and the phrase counted where their positions follow one
        another within the headline or the text (a posting's first `in_title` positions are its headline's;
        a headline's postings are all headline)."""
        stems = phrase.split(" ")
        held = dict(self.rows(f"SELECT lexeme, rows FROM {index}_terms WHERE lexeme = ANY(?)", (stems,)))
        lead = min(range(len(stems)), key=lambda n: held.get(stems[n], 0))
        others = [n for n in range(len(stems)) if n != lead]
        joins = "".join(
            f" JOIN {index}_postings q{n} ON q{n}.lexeme = ? AND q{n}.rowid = p.rowid" for n in others
        )
        follows = "".join(
            f" AND (array_position(q{n}.at, (f.x + {n - lead})::smallint) <= q{n}.in_title)"
            " = (f.o <= p.in_title)"
            for n in others
        )
        sql = f"""SELECT * FROM (SELECT p.rowid, p.length, ?::text COLLATE "C" AS lexeme,
                (SELECT coalesce(sum(CASE WHEN f.o <= p.in_title THEN ?::float8 ELSE 1 END), 0)
                 FROM unnest(p.at) WITH ORDINALITY AS f(x, o) WHERE TRUE{follows}) AS tf
            FROM {index}_postings p{joins} WHERE p.lexeme = ? AND {which[0]}) AS phrased
            WHERE tf > 0"""
        return sql, [phrase, title_weight, *(stems[n] for n in others), stems[lead], *which[1]]

    def _statistics(self, index: str, terms: Sequence[str]) -> tuple[dict[str, float], float]:
        """Each term's inverse document frequency as FTS5 computes it, and the average length of the rows
        of an index ("passage" or "headline")."""
        # One statement, so one moment: read apart, a write committed between them could leave a word in
        # more rows than the index held a moment before.
        found = self.rows(
            f"SELECT t.rows, t.tokens, k.lexeme, k.rows FROM bm25_totals AS t "
            f"LEFT JOIN {index}_terms AS k ON k.lexeme = ANY(?) WHERE t.index_name = ?",
            (list(terms), index),
        )
        count, tokens = (int(found[0][0]), int(found[0][1])) if found else (0, 0)
        held = {lexeme: int(rows) for _, _, lexeme, rows in found if lexeme is not None}
        idf = {}
        for term in terms:
            n = self._phrase_rows(index, term, (count, tokens)) if " " in term else held.get(term, 0)
            ratio = (count - n + 0.5) / (n + 0.5)
            idf[term] = math.log(ratio) if ratio > 1 else 1e-6  # FTS5's floor for a word in most rows
        return idf, (tokens / count if count else 1.0)

    def _phrase_rows(self, index: str, phrase: str, totals: tuple[int, int]) -> int:
        """How many rows of an index ("passage" or "headline") hold a phrase: counted once per phrase while
        the index's totals (rows, tokens) are unchanged, as FTS5 counts them for every statement."""
        if self._phrases_of.get(index) != totals or len(self._phrases) > 50_000:
            self._phrases = {key: n for key, n in self._phrases.items() if key[0] != index}
            self._phrases_of[index] = totals
        if (index, phrase) not in self._phrases:
            sql, params = self._phrase_in(index, phrase, ("TRUE", []), 1.0)
            found = self.row(f"SELECT count(*) FROM ({sql}) AS m", params)
            self._phrases[(index, phrase)] = int(found[0]) if found else 0
        return self._phrases[(index, phrase)]


_PHRASE = re.compile(r"[\w.-]+( [\w.-]+)*")  # what stems may hold to be quoted into a query as they are
# The rows of an index matching any of some words (their tf: a passage's headline counts `title weight` times)
_WORDS = """SELECT p.rowid, p.length, p.lexeme, p.in_title * ? + p.in_text AS tf
    FROM {index}_postings p WHERE p.lexeme = ANY(?::text[])"""
_BM25 = "q.idf * m.tf * 2.2 / (m.tf + 1.2 * (0.25 + 0.75 * m.length / ?))"  # k1 = 1.2, b = 0.75, as FTS5


SCHEMA_LOCK = 0x6E657773  # the advisory lock that makes the tables ("news")
WRITER_LOCK = 0x6E657774  # the advisory lock every writer holds, shared by ingest runs
WRITE_TURN = 0x6E657775  # the advisory lock of one journalled write


def _placeholders(sql: str) -> str:
    """The store's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")
