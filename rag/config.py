"""Settings for Newsdesk, read from `NEWSDESK_*` environment variables and a `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Newsdesk reads; pass one frozen instance to the functions that need it."""

    model_config = SettingsConfigDict(env_prefix="NEWSDESK_", env_file=".env", extra="ignore", frozen=True)

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

    @property
    def uses_chroma_server(self) -> bool:
        """Whether vectors live in a Chroma server rather than in data_dir."""
        return bool(self.chroma_host or self.chroma_port)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
