"""The PostgreSQL catalog's tables, functions and triggers (rag/store/postgres.py runs them): the same tables
as the SQLite catalog, and the word statistics and postings that BM25 reads, kept by triggers once a
statement as rows are written."""

TABLES = (
    "meta", "articles", "passages", "pending", "article_versions", "ingest_runs", "periods", "outlets",
    "vector_splits", "passage_terms", "passage_postings", "headline_terms", "headline_postings",
    "bm25_totals",
)  # fmt: skip
_PERIOD = (
    "CASE WHEN {row}.published_ts IS NULL THEN 'undated' "
    "ELSE to_char(to_timestamp({row}.published_ts) AT TIME ZONE 'UTC', 'YYYY-MM') END"
)
# The postings of some articles' headlines (`rows`: the table they are read from)
_HEADLINE_POSTINGS = """SELECT t.lexeme, {rows}.rowid, cardinality(t.positions), 0, {rows}.title_length,
    t.positions FROM {rows}, unnest({rows}.title_terms) AS t"""
# Text compared by order (a folder's files, ties in time) is compared byte by byte, as SQLite does.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS articles (
        rowid BIGINT PRIMARY KEY,
        article_id TEXT COLLATE "C" NOT NULL UNIQUE,
        source TEXT COLLATE "C" NOT NULL,
        content_hash TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        title TEXT, outlet TEXT, author TEXT, url TEXT, published_at TEXT, published_ts DOUBLE PRECISION,
        chunk_count INTEGER NOT NULL,
        duplicate_of TEXT,
        ingested_at TEXT NOT NULL,
        updated_at TEXT,
        focus DOUBLE PRECISION,
        story_id TEXT,
        copy_of TEXT,
        minhash BYTEA,
        title_terms TSVECTOR,
        title_length INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash)",
    "CREATE INDEX IF NOT EXISTS articles_story ON articles(story_id)",
    "CREATE INDEX IF NOT EXISTS articles_published ON articles(published_ts)",
    "CREATE INDEX IF NOT EXISTS articles_source ON articles(source)",
    "CREATE INDEX IF NOT EXISTS articles_ingested ON articles(ingested_at)",
    "DROP INDEX IF EXISTS articles_title_terms",  # searches read the headline postings
    """CREATE TABLE IF NOT EXISTS passages (
        rowid BIGINT PRIMARY KEY,
        chunk_id TEXT NOT NULL UNIQUE,
        article_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        title TEXT,
        text TEXT NOT NULL,
        terms TSVECTOR,
        length INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS passages_article ON passages(article_id)",
    "DROP INDEX IF EXISTS passages_terms",  # searches read the postings
    "CREATE TABLE IF NOT EXISTS pending (article_id TEXT PRIMARY KEY, periods TEXT)",
    """CREATE TABLE IF NOT EXISTS article_versions (
        article_id TEXT COLLATE "C" NOT NULL, content_hash TEXT NOT NULL, ingested_at TEXT NOT NULL,
        updated_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS article_versions_article ON article_versions(article_id)",
    """CREATE TABLE IF NOT EXISTS ingest_runs (
        started_at TEXT NOT NULL UNIQUE, finished_at TEXT NOT NULL, new INTEGER NOT NULL,
        changed INTEGER NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS periods "
    "(period TEXT PRIMARY KEY, articles INTEGER NOT NULL, passages INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS vector_splits (shelf TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS outlets (outlet TEXT PRIMARY KEY, articles INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS passage_terms (lexeme TEXT PRIMARY KEY, rows BIGINT NOT NULL)",
    # Each stem of each passage: how often in its headline and in its text, the passage's length, and where
    # it stands (its positions, the headline's first: a phrase's stems are found one after another there)
    """CREATE TABLE IF NOT EXISTS passage_postings (
        lexeme TEXT COLLATE "C" NOT NULL, rowid BIGINT NOT NULL, in_title SMALLINT NOT NULL,
        in_text SMALLINT NOT NULL, length INTEGER NOT NULL, at SMALLINT[],
        PRIMARY KEY (lexeme, rowid) INCLUDE (in_title, in_text, length, at)
    )""",  # a search reads the index alone
    # (catalogs made before the positions were kept get them once, in the table and in its index)
    "ALTER TABLE passage_postings ADD COLUMN IF NOT EXISTS at SMALLINT[]",
    """UPDATE passage_postings AS p SET at = u.positions FROM passages AS x, unnest(x.terms) AS u
        WHERE p.at IS NULL AND x.rowid = p.rowid AND u.lexeme = p.lexeme""",
    """DO $$ BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM pg_index AS i JOIN pg_attribute AS a ON a.attrelid = i.indrelid
            WHERE i.indrelid = 'passage_postings'::regclass AND i.indisprimary AND a.attname = 'at'
            AND a.attnum = ANY(i.indkey)
        ) THEN
            ALTER TABLE passage_postings DROP CONSTRAINT passage_postings_pkey,
                ADD PRIMARY KEY (lexeme, rowid) INCLUDE (in_title, in_text, length, at);
        END IF;
    END $$""",
    # Words as FTS5's index has them (its unicode61 tokenizer, its Porter stemmer): split at punctuation,
    # stop words kept, each stemmed by Porter's algorithm.
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'newsdesk_porter') THEN
            CREATE TEXT SEARCH DICTIONARY newsdesk_porter (TEMPLATE = snowball, Language = porter);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'newsdesk') THEN
            CREATE TEXT SEARCH CONFIGURATION newsdesk (COPY = english);
            ALTER TEXT SEARCH CONFIGURATION newsdesk
                ALTER MAPPING FOR asciiword, word, hword_part, hword_asciipart WITH newsdesk_porter;
        END IF;
    END $$""",
    """CREATE OR REPLACE FUNCTION newsdesk_words(text TEXT) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
        SELECT to_tsvector('newsdesk',
            regexp_replace(text, '[[:punct:]\\u2018-\\u201d\\u2013\\u2014\\u2026]+', ' ', 'g'))
    $$""",
    "DROP FUNCTION IF EXISTS newsdesk_phrase_count(TSVECTOR, TEXT[], BOOLEAN)",
    "DROP FUNCTION IF EXISTS newsdesk_phrase_tf(TSVECTOR, TEXT[], FLOAT8)",  # headlines have postings
    "CREATE TABLE IF NOT EXISTS headline_terms (lexeme TEXT PRIMARY KEY, rows BIGINT NOT NULL)",
    # Each stem of each headline, as the passages' postings have them (all of it `in_title`): a headline
    # search reads the postings of its words within the periods asked for, not every headline of them
    """CREATE TABLE IF NOT EXISTS headline_postings (
        lexeme TEXT COLLATE "C" NOT NULL, rowid BIGINT NOT NULL, in_title SMALLINT NOT NULL,
        in_text SMALLINT NOT NULL, length INTEGER NOT NULL, at SMALLINT[],
        PRIMARY KEY (lexeme, rowid) INCLUDE (in_title, in_text, length, at)
    )""",
    # (a catalog made before them gets them once, from its headlines)
    f"""INSERT INTO headline_postings {_HEADLINE_POSTINGS.format(rows="articles")}
        WHERE NOT EXISTS (SELECT 1 FROM headline_postings)""",
    """CREATE TABLE IF NOT EXISTS bm25_totals (
        index_name TEXT PRIMARY KEY, rows BIGINT NOT NULL, tokens BIGINT NOT NULL
    )""",
    """CREATE OR REPLACE FUNCTION newsdesk_passage_terms() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.terms := setweight(newsdesk_words(coalesce(NEW.title, '')), 'A') || newsdesk_words(NEW.text);
        NEW.length := (SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(NEW.terms));
        RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION newsdesk_headline_terms() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.title_terms := newsdesk_words(coalesce(NEW.title, ''));
        NEW.title_length := (SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(NEW.title_terms));
        RETURN NEW;
    END $$""",
    # The counts change once a statement, from the rows it wrote (its transition table, "changed"): a row
    # updated once per passage would pile up versions of the commonest words' rows within a transaction.
    """CREATE OR REPLACE FUNCTION newsdesk_count_passages() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        sign INTEGER := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    BEGIN
        INSERT INTO passage_terms
            SELECT t.lexeme, sign * count(*) FROM changed, unnest(changed.terms) AS t GROUP BY t.lexeme
            ON CONFLICT (lexeme) DO UPDATE SET rows = passage_terms.rows + excluded.rows;
        IF TG_OP = 'INSERT' THEN
            INSERT INTO passage_postings
                SELECT t.lexeme, changed.rowid, coalesce(cardinality(array_positions(t.weights, 'A')), 0),
                       cardinality(t.positions) - coalesce(cardinality(array_positions(t.weights, 'A')), 0),
                       changed.length, t.positions
                FROM changed, unnest(changed.terms) AS t;
        ELSE
            DELETE FROM passage_postings AS p USING changed, unnest(changed.terms) AS t
                WHERE p.lexeme = t.lexeme AND p.rowid = changed.rowid;
        END IF;
        INSERT INTO bm25_totals AS b
            SELECT 'passage', sign * count(*), sign * coalesce(sum(length), 0) FROM changed
            ON CONFLICT (index_name) DO UPDATE
            SET rows = b.rows + excluded.rows, tokens = b.tokens + excluded.tokens;
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION newsdesk_count_articles() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        sign INTEGER := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    BEGIN
        INSERT INTO headline_terms
            SELECT t.lexeme, sign * count(*) FROM changed, unnest(changed.title_terms) AS t GROUP BY t.lexeme
            ON CONFLICT (lexeme) DO UPDATE SET rows = headline_terms.rows + excluded.rows;
        IF TG_OP = 'INSERT' THEN
            INSERT INTO headline_postings {_HEADLINE_POSTINGS.format(rows="changed")};
        ELSE
            DELETE FROM headline_postings AS h USING changed, unnest(changed.title_terms) AS t
                WHERE h.lexeme = t.lexeme AND h.rowid = changed.rowid;
        END IF;
        INSERT INTO bm25_totals AS b
            SELECT 'headline', sign * count(*), sign * coalesce(sum(title_length), 0) FROM changed
            ON CONFLICT (index_name) DO UPDATE
            SET rows = b.rows + excluded.rows, tokens = b.tokens + excluded.tokens;
        INSERT INTO periods
            SELECT {_PERIOD.format(row="changed")} AS period, sign * count(*), sign * sum(chunk_count)
            FROM changed GROUP BY 1
            ON CONFLICT (period) DO UPDATE
            SET articles = periods.articles + excluded.articles,
                passages = periods.passages + excluded.passages;
        INSERT INTO outlets
            SELECT outlet, sign * count(*) FROM changed WHERE outlet IS NOT NULL GROUP BY outlet
            ON CONFLICT (outlet) DO UPDATE SET articles = outlets.articles + excluded.articles;
        RETURN NULL;
    END $$""",
    "DROP TRIGGER IF EXISTS passages_terms ON passages",
    "CREATE TRIGGER passages_terms BEFORE INSERT ON passages FOR EACH ROW "
    "EXECUTE FUNCTION newsdesk_passage_terms()",
    "DROP TRIGGER IF EXISTS articles_terms ON articles",
    "CREATE TRIGGER articles_terms BEFORE INSERT ON articles FOR EACH ROW "
    "EXECUTE FUNCTION newsdesk_headline_terms()",
    # Made by earlier versions, a row at a time
    "DROP TRIGGER IF EXISTS passages_count ON passages",
    "DROP TRIGGER IF EXISTS articles_count ON articles",
    "DROP TRIGGER IF EXISTS articles_headline_count ON articles",
    "DROP FUNCTION IF EXISTS newsdesk_count_terms()",
    *(
        statement
        for table in ("passages", "articles")
        for event in ("insert", "delete")
        for statement in (
            f"DROP TRIGGER IF EXISTS {table}_{event}_count ON {table}",
            f"CREATE TRIGGER {table}_{event}_count AFTER {event.upper()} ON {table} "
            f"REFERENCING {'NEW' if event == 'insert' else 'OLD'} TABLE AS changed FOR EACH STATEMENT "
            f"EXECUTE FUNCTION newsdesk_count_{table}()",
        )
    ),
)
