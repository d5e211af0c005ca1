"""A catalog copied into another database: a store that outgrows one machine moves its catalog from the
data folder's SQLite file to PostgreSQL (`python -m ingest --copy-catalog-to URL`), its vectors staying
where they are, so nothing is embedded again. The target's own triggers build its keyword and headline
indexes and the counts kept beside them as the rows arrive."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rag.store.database import CatalogDatabase
from rag.store.records import StoreError

# What is copied, in order; what the target's triggers count (periods, outlets, BM25 statistics) is not.
TABLES = ("meta", "articles", "passages", "pending", "ingest_runs", "vector_splits", "fetch_state")
NUMBERED = {"articles", "passages"}  # rows numbered by publish day (rag/store/periods.py), kept as they are
BATCH = 5000


def copy_catalog(
    source: CatalogDatabase, target: CatalogDatabase, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every row of the source's catalog into the target's, which must hold no articles, in one
    transaction of the target: killed half way, the target is left as it was. Returns rows per table."""
    target.create_tables()
    (held,) = target.row("SELECT count(*) FROM articles") or (0,)
    if held:
        raise StoreError(f"The database copied to already holds {held} articles; copy into an empty one.")
    copied: dict[str, int] = {}
    with target.transaction():
        for table in TABLES:
            held_by_source = source.columns(table)
            columns = [c for c in target.columns(table) if c in held_by_source or c == "rowid"]
            columns.sort(key=lambda column: column != "rowid")  # first: the batches are read in its order
            if not columns or not held_by_source:
                continue  # a table the source never made (feed state, before any feed was read)
            listed = ", ".join(f'"{column}"' for column in columns)
            copied[table] = 0
            for rows in _batches(source, table, listed):
                target.insert_rows(table, columns, rows)
                copied[table] += len(rows)
                if progress:
                    progress(table, copied[table])
    target.settle()
    return copied


def _batches(source: CatalogDatabase, table: str, listed: str) -> Iterator[list[tuple[object, ...]]]:
    """The source's rows of a table, a batch at a time (numbered tables in the order of their rows)."""
    if table not in NUMBERED:
        yield source.rows(f"SELECT {listed} FROM {table}")
        return
    last = -(2**63)
    while rows := source.rows(
        f"SELECT {listed} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {BATCH}", (last,)
    ):
        yield rows
        last = rows[-1][0]
