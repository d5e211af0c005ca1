"""FTS5's BM25 for chosen passages only. FTS5 ranks every passage that matches a query (and counts each
word's matches over the whole index for every statement), so scoring the few passages a vector search found
costs what a full keyword search costs. Here the passages are tokenized by FTS5 itself, in a scratch table in
memory (the same tokenizer, so the same words), and scored with the index's own statistics and FTS5's
formula: the same score FTS5's `bm25()` gives them."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Sequence

K1, B = 1.2, 0.75  # FTS5's bm25() constants
_SCRATCH = (
    "CREATE VIRTUAL TABLE scratch USING fts5(title, text, tokenize='porter unicode61')",
    "CREATE VIRTUAL TABLE scratch_tokens USING fts5vocab(scratch, 'instance')",
)


class Scorer:
    """BM25 scores of given rows against an FTS5 index (title and text columns) of a database."""

    def __init__(self, database: sqlite3.Connection, index: str) -> None:
        self.database, self.index = database, index
        self._scratch = sqlite3.connect(":memory:", check_same_thread=False)
        for statement in _SCRATCH:
            self._scratch.execute(statement)
        self._lock = threading.Lock()
        self._matches: dict[str, int] = {}  # phrase -> rows of the index matching it
        self._matches_of = (-1, -1)  # the index's rows and tokens when those were counted

    def scores(
        self, phrases: Sequence[str], rows: Sequence[tuple[str, str | None, str]], *, title_weight: float
    ) -> dict[str, float]:
        """The BM25 score of each row (key, title, text) that matches any phrase (FTS5 phrase syntax:
        '"word"'), as `-bm25(index, title_weight, 1.0)` would give it for the query `phrase OR ...`."""
        if not rows or not phrases:
            return {}
        with self._lock:  # the scratch table and the remembered counts
            count, tokens = self._totals()
            idf = [_idf(count, self._matched(phrase, (count, tokens))) for phrase in phrases]
            stems, lengths, columns = self._tokens([phrase.strip('"') for phrase in phrases], rows)
        average = tokens / count if count else 1.0
        found: dict[str, float] = {}
        for n, (key, _, _) in enumerate(rows):
            score = 0.0
            for weight, phrase in zip(idf, stems, strict=True):
                freq = sum(
                    w * _occurrences(phrase, columns.get((n, column), {}))
                    for column, w in (("title", title_weight), ("text", 1.0))
                )
                if freq:
                    norm = K1 * (1 - B + B * lengths.get(n, 0) / average)
                    score += weight * freq * (K1 + 1) / (freq + norm)
            if score:
                found[key] = score
        return found

    def close(self) -> None:
        self._scratch.close()

    def _tokens(
        self, phrases: list[str], rows: Sequence[tuple[str, str | None, str]]
    ) -> tuple[list[tuple[str, ...]], dict[int, int], dict[tuple[int, str], dict[int, str]]]:
        """FTS5's tokens: each phrase's, each row's count, and where each row's column holds the phrases'."""
        scratch = self._scratch
        scratch.execute("DELETE FROM scratch")
        scratch.executemany(
            "INSERT INTO scratch(rowid, title, text) VALUES (?, ?, ?)",
            [(n, title, text) for n, (_, title, text) in enumerate(rows)]
            + [(-1 - n, None, phrase) for n, phrase in enumerate(phrases)],
        )
        stems: list[list[tuple[int, str]]] = [[] for _ in phrases]
        for doc, offset, term in scratch.execute(
            "SELECT doc, offset, term FROM scratch_tokens WHERE doc < 0"
        ):  # (the scratch table's rows are few: reading them all is cheaper than a lookup per phrase)
            stems[-1 - doc].append((offset, term))
        wanted = sorted({term for phrase in stems for _, term in phrase})
        counted = "SELECT doc, count(*) FROM scratch_tokens WHERE doc >= 0 GROUP BY doc"
        lengths = dict(scratch.execute(counted))
        columns: dict[tuple[int, str], dict[int, str]] = {}
        marks = ", ".join("?" * len(wanted))
        for doc, column, offset, term in scratch.execute(
            f"SELECT doc, col, offset, term FROM scratch_tokens WHERE term IN ({marks})", wanted
        ):
            if doc >= 0:
                columns.setdefault((doc, column), {})[offset] = term
        return [tuple(term for _, term in sorted(phrase)) for phrase in stems], lengths, columns

    def _totals(self) -> tuple[int, int]:
        """The index's rows and tokens, from the record FTS5 keeps them in (its `averages` record: a
        varint of the rows, then one of each column's tokens)."""
        found = self.database.execute(f"SELECT block FROM {self.index}_data WHERE id = 1").fetchone()
        if not found or not found[0]:
            return 0, 0
        values, block, at = [], bytes(found[0]), 0
        while at < len(block):
            value, at = _varint(block, at)
            values.append(value)
        return values[0], sum(values[1:])

    def _matched(self, phrase: str, totals: tuple[int, int]) -> int:
        """How many rows of the index match a phrase: counted once per phrase while the index's totals (rows,
        tokens) are unchanged."""
        if totals != self._matches_of or len(self._matches) > 50_000:
            self._matches, self._matches_of = {}, totals
        if phrase not in self._matches:
            sql = f"SELECT count(*) FROM {self.index} WHERE {self.index} MATCH ?"
            self._matches[phrase] = int(self.database.execute(sql, (phrase,)).fetchone()[0])
        return self._matches[phrase]


def _idf(rows: int, matched: int) -> float:
    idf = math.log((rows - matched + 0.5) / (matched + 0.5)) if rows > matched else 0.0
    return idf if idf > 0 else 1e-6  # FTS5's floor for a word in most rows


def _occurrences(phrase: tuple[str, ...], tokens: dict[int, str]) -> int:
    """How often a phrase's stems stand one after another among a column's tokens (offset -> stem)."""
    if not phrase:
        return 0
    return sum(
        all(tokens.get(offset + i) == stem for i, stem in enumerate(phrase[1:], 1))
        for offset, term in tokens.items()
        if term == phrase[0]
    )


def _varint(block: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at a position: the value and the position after it."""
    value = 0
    for i in range(9):
        byte = block[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("a varint longer than nine bytes")
