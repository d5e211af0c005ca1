"""Settings for Newsdesk, read from `NEWSDESK_*` environment variables and a `.env` file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrievalConfig(BaseModel):
    """How passages are found, fused, weighed and trimmed: every tuned number of retrieval in one place.

    Change one for a run with `bench/evaluate.py --set NAME=VALUE`, or for good with
    `NEWSDESK_RETRIEVAL__NAME=VALUE`; docs/evaluation.md says how each value was measured.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Searching and fusing
    candidates: int = Field(60, ge=1, description="Hits taken from each search before fusion.")
    rrf_k: float = Field(60.0, gt=0, description="Reciprocal rank fusion constant (Cormack et al. 2009).")
    headline_weight: float = Field(
        0.3, ge=0, description="Fusion weight of the passages of the articles whose headline best matches."
    )
    title_weight: float = Field(
        1.0, ge=0, description="BM25 weight of a passage's headline column against its text."
    )
    common_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="A word in more than this share of passages is left out of keyword search...",
    )
    common_floor: int = Field(2000, ge=0, description="... when it is also in more passages than this.")
    window_passages: int = Field(
        100_000,
        ge=1,
        description="Passages a question's search takes in at least, period by period, before it may stop "
        "(searching fewer saves little and ranks the passages found against fewer others).",
    )
    vector_passages: int = Field(
        3_000_000,
        ge=1,
        description="Passages whose vectors one question may search past its first window, the periods that "
        "weigh most first; older ones are searched by their words alone. Searched vectors are held in "
        "memory (about 2 KB a passage), so this bounds what a question about all time needs.",
    )

    # Dates: the period a question names, and how much newer reporting is favoured
    in_period: float = Field(1.0, ge=0, description="Weight of a passage from the period the question names.")
    out_of_period: float = Field(0.3, ge=0, description="Weight of a passage from outside that period.")
    unknown_date: float = Field(0.6, ge=0, description="Weight of an undated passage when a period is named.")
    recent_half_life: float = Field(
        30.0, gt=0, description="Days in which a passage's recency weight halves (towards the floor)."
    )
    latest_half_life: float = Field(
        7.0, gt=0, description="The same when the question asks for the latest news."
    )
    recent_floor: float = Field(0.3, ge=0, le=1, description="Recency weight of very old reporting.")
    undated_age: float = Field(90.0, ge=0, description="Days an undated article counts as old for recency.")

    # Kinds of article
    focus_low: float = Field(
        0.35, description="An article whose passages are this unlike (a digest, a live blog) weighs least..."
    )
    focus_high: float = Field(0.5, description="... and one from this focus up weighs fully.")
    multi_story_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of a digest at focus_low and below."
    )
    opinion_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of an opinion piece unless the question asks for opinions."
    )

    # Trimming
    per_article: int = Field(2, ge=1, description="Passages one article may contribute to the results.")
    per_story: int = Field(
        0,
        ge=0,
        description="Passages one story may hold before other stories get the next slots (0: no limit).",
    )
    near_duplicate: float = Field(
        0.8, gt=0, le=1, description="Word overlap (Jaccard) from which two passages count as one."
    )


class AnswerConfig(BaseModel):
    """How the offline answerer picks the sentences it quotes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_sentences: int = Field(3, ge=1, description="Sentences the offline answer quotes at most.")
    reader_candidates: int = Field(
        32, ge=1, description="Sentences, the likeliest by their words, that the reader scores per question."
    )
    keep_within: float = Field(
        2.0, ge=0, description="Sentences the reader scores within this of the best one are quoted too."
    )
    word_weight: float = Field(
        1.0, ge=0, description="How much the question's words a sentence holds (their weighted share, and "
        "new names or numbers) add to its reader score."
    )
    rank_weight: float = Field(
        2.0, ge=0, description="How much a passage's retrieval score (as a share of the best one's) adds to "
        "its sentences' reader scores."
    )
    new_fact_bonus: float = Field(
        0.2, ge=0, description="Bonus for a sentence naming names or numbers the question does not, among "
        "those the reader is given."
    )
    min_coverage: float = Field(
        0.3, ge=0, le=1, description="Share of the question's weighted words a passage must hold to answer."
    )
    min_sentence_coverage: float = Field(
        0.15, ge=0, le=1, description="Share of them one sentence of an answering passage must hold, or the "
        "answer says the sources don't say."
    )
    min_support: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of a sentence's words its cited passages must hold for it to count as supported "
        "(its numbers, dates and names must all be there too).",
    )


class StoryConfig(BaseModel):
    """How articles are grouped into stories at ingest: near copies by shared text, coverage of one event
    by the likeness of the whole articles or of their headline and lead. docs/evaluation.md gives the
    precision and recall measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shingle_words: int = Field(5, ge=1, description="Words per shingle compared for near copies.")
    permutations: int = Field(128, ge=16, description="MinHash permutations per article.")
    reports_compared: int = Field(
        8, ge=0, description="Other reports of a cited story read for values that differ from the sources'."
    )
    near_copy: float = Field(
        0.5, gt=0, le=1, description="Shingle overlap (estimated Jaccard) from which two articles are copies."
    )
    same_story: float = Field(
        0.8, gt=0, le=1, description="Cosine of headline-and-lead vectors from which articles share a story."
    )
    same_story_body: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Cosine of whole-article vectors (the mean of its passages') from which articles share a "
        "story.",
    )
    same_story_both: float = Field(
        0.75,
        gt=0,
        le=1,
        description="Cosine from which articles share a story when both their headline-and-lead and their "
        "whole-article vectors are that alike.",
    )
    window_days: int = Field(
        7, ge=0, description="Days apart two articles may be published and still share a story."
    )
    copy_window_days: int = Field(
        30, ge=0, description="Days apart two articles may be published and still be near copies."
    )
    timeline_lines: int = Field(12, ge=1, description="Dated lines a timeline answer lists at most.")
    timeline_coverage: float = Field(
        0.6, ge=0, le=1, description="Share of the subject's weighted words a timeline's passage must hold."
    )
    brief_stories: int = Field(20, ge=1, description="Stories the What's new brief lists at most.")
    stale_after_days: int = Field(
        7, ge=0, description="A question about now whose newest source is older than this is warned."
    )


class Settings(BaseSettings):
    """Every setting Newsdesk reads; pass one frozen instance to the functions that need it."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSDESK_", env_file=".env", extra="ignore", frozen=True, env_nested_delimiter="__"
    )

    # Where things live
    data_dir: Path = Field(
        Path("data"), description="Folder for the article catalog, keyword index and embedded Chroma."
    )
    collection: str = Field("newsdesk", description="Name of the Chroma collection holding passages.")
    corpus_dir: Path = Field(
        Path("seeds"), description="Folder of articles the app ingests from; uploads are saved in it."
    )

    # Chroma server (when both are unset, an embedded store in data_dir is used by one process)
    chroma_host: str | None = Field(
        None,
        validation_alias=AliasChoices("CHROMA_HOST", "NEWSDESK_CHROMA_HOST"),
        description="Host of a `chroma run` server; set it so ingest and the app can run at once.",
    )
    chroma_port: int | None = Field(
        None,
        validation_alias=AliasChoices("CHROMA_PORT", "NEWSDESK_CHROMA_PORT"),
        description="Port of the Chroma server (default 8000 when only the host is set).",
    )

    # The catalog's database (when unset, an SQLite file in data_dir)
    database_url: str | None = Field(
        None,
        description="PostgreSQL database for the catalog and keyword index (postgresql://user@host/db), so "
        "several machines can share the store; with a Chroma server for the vectors.",
    )

    # Embeddings
    embedding_backend: str = Field(
        "local",
        description="`local` (all-MiniLM-L6-v2, int8 ONNX, offline) or `openai` (needs OPENAI_API_KEY).",
    )
    openai_embedding_model: str = Field(
        "text-embedding-3-small", description="Embedding model name when embedding_backend is `openai`."
    )
    embed_batch_size: int = Field(8, description="Passages per model call of the local embedder.")
    onnx_threads: int = Field(0, description="onnxruntime intra-op threads; 0 lets onnxruntime choose.")
    write_group: int = Field(
        1024,
        description="Passages sorted by length, embedded and written together (a killed run redoes one).",
    )
    shelf_size: int = Field(
        100_000,
        ge=1,
        description="Vectors a decade's Chroma collection holds before it is split into one a year, and a "
        "year's before it is split into one a month.",
    )

    # Chunking, in the embedding model's tokens (its window is 256)
    chunk_tokens: int = Field(200, description="Passage size in model tokens; fits the 256-token window.")
    chunk_overlap: int = Field(30, description="Tokens shared by neighbouring passages.")

    # Input limits
    max_file_mb: float = Field(
        10.0,
        description="Largest single-article file, JSON record, fetched page or feed ingest accepts, in MB.",
    )

    # Feeds and web pages
    sources_file: Path = Field(
        Path("sources.toml"),
        description="Feeds, article URLs and folders `python -m ingest` reads when given none, if present.",
    )
    fetch_timeout: float = Field(20.0, description="Seconds to wait for a web server to connect or answer.")
    max_redirects: int = Field(5, description="Redirects followed for one fetch before giving up.")
    user_agent: str = Field(
        "Newsdesk/0.1 (news question answering; fetches feeds and articles its reader subscribed to)",
        description="User-Agent sent with every request.",
    )
    allow_loopback: bool = Field(
        False, description="Allow fetching from 127.0.0.0/8 and ::1 (local test servers); off by default."
    )
    allow_private_networks: bool = Field(
        False,
        description="Allow fetching from private, loopback and link-local addresses (an intranet news site).",
    )
    follow_minutes: float = Field(15.0, description="Minutes between polls of `python -m ingest --follow`.")

    # Chat model (OpenAI-compatible)
    openai_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "NEWSDESK_OPENAI_API_KEY"),
        description="Key for the OpenAI API; with it, a chat model writes answers.",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "NEWSDESK_OPENAI_BASE_URL"),
        description="Base URL of any OpenAI-compatible server (Ollama, llama.cpp, vLLM).",
    )
    chat_model: str = Field("gpt-4o-mini", description="Chat model name used for answers.")

    # Ranking and answering (NEWSDESK_RETRIEVAL__CANDIDATES=40, NEWSDESK_ANSWER__MAX_SENTENCES=2, ...)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig, description="Retrieval's numbers.")
    answer: AnswerConfig = Field(default_factory=AnswerConfig, description="The offline answerer's numbers.")
    stories: StoryConfig = Field(default_factory=StoryConfig, description="Story grouping's numbers.")

    @property
    def uses_chroma_server(self) -> bool:
        """Whether vectors live in a Chroma server rather than in data_dir."""
        return bool(self.chroma_host or self.chroma_port)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]


class SettingError(ValueError):
    """An override that names no setting or gives it a value it cannot take."""


_TUNED: dict[str, type[BaseModel]] = {
    "retrieval": RetrievalConfig,
    "answer": AnswerConfig,
    "stories": StoryConfig,
}


def with_overrides(config: Settings, assignments: Iterable[str]) -> Settings:
    """Settings with `NAME=VALUE` assignments to retrieval or answer numbers applied
    (`recent_floor=0.5`, or `answer.max_sentences=2` where a name alone would be unclear)."""
    changes: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not value.strip():
            raise SettingError(f"{assignment!r}: write NAME=VALUE, e.g. recent_floor=0.5")
        group, field = _tuned_field(name.strip())
        changes.setdefault(group, {})[field] = value.strip()
    updated: dict[str, BaseModel] = {}
    for group, fields in changes.items():
        current: BaseModel = getattr(config, group)
        try:
            updated[group] = type(current).model_validate({**current.model_dump(), **fields})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise SettingError(f"cannot set {group} {problems}") from None
    return config.model_copy(update=updated)


def _tuned_field(name: str) -> tuple[str, str]:
    """The group and field a setting name refers to."""
    group, _, field = name.rpartition(".")
    groups = [group] if group else list(_TUNED)
    found = [g for g in groups if g in _TUNED and field in _TUNED[g].model_fields]
    if len(found) == 1:
        return found[0], field
    if len(found) > 1:
        raise SettingError(f"{name!r} is in {' and '.join(found)}: write {found[0]}.{field}")
    known = ", ".join(f"{g}.{f}" for g, model in _TUNED.items() for f in model.model_fields)
    raise SettingError(f"no setting {name!r}; the settings are: {known}")
