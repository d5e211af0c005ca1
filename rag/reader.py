"""The reader: a cross-encoder trained for Newsdesk that scores how well each sentence answers a question.

It ships in the package as int8 ONNX (`rag/models/reader.onnx`) with its model card (`reader.json`, which
says how it was made: `python -m train.reader`), and runs on onnxruntime with the embedding model's
word-piece tokenizer, offline. A missing or damaged file is an error that names it, never a quiet fallback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.embeddings import length_batches, load_tokenizer, onnx_session, padded

MODEL_DIR = Path(__file__).parent / "models"
_BATCH = 16  # pairs per model call


class ReaderError(RuntimeError):
    """The reader's model file is missing or damaged."""


def _restore_hint(path: Path) -> str:
    return (
        f"Restore it with `git checkout -- rag/models/{path.name}` (or reinstall Newsdesk), "
        "or rebuild it with `python -m train.reader` (needs the [train] extra and ../shared)."
    )


class Reader:
    """Scores (question, sentence) pairs: a higher score, a likelier answer."""

    def __init__(self, model_dir: Path = MODEL_DIR, *, threads: int = 0) -> None:
        model, card_file = model_dir / "reader.onnx", model_dir / "reader.json"
        for path in (model, card_file):
            if not path.is_file():
                raise ReaderError(f"The reader's model file {path} is missing. {_restore_hint(path)}")
        try:
            card = json.loads(card_file.read_text("utf-8"))
            expected, self.max_tokens = str(card["file_sha256"]), int(card["max_tokens"])
        except (ValueError, KeyError, TypeError) as error:
            raise ReaderError(
                f"The reader's model card {card_file} is damaged ({error}). {_restore_hint(card_file)}"
            ) from error
        if file_sha256(model) != expected:
            raise ReaderError(
                f"The reader's model file {model} is damaged (its SHA-256 is not the one {card_file.name} "
                f"records). {_restore_hint(model)}"
            )
        self.session = _session(model, threads)
        self.tokenizer = _pair_tokenizer(self.max_tokens)
        self.calls = 0  # pairs scored by this instance

    def score(self, question: str, said: Sequence[str]) -> list[float]:
        """Score each sentence as an answer to the question."""
        if not said:
            return []
        encodings = self.tokenizer.encode_batch([(question, s) for s in said])
        scores = np.zeros(len(said), dtype=np.float32)
        for batch in length_batches(encodings, _BATCH):
            (logits,) = self.session.run(None, padded([encodings[i] for i in batch]))
            scores[batch] = np.asarray(logits)[:, 0]
        self.calls += len(said)
        return [float(s) for s in scores]


@lru_cache(maxsize=1)
def default_reader() -> Reader:
    """The shipped reader, loaded once per process."""
    return Reader()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, as the model card records it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _session(path: Path, threads: int) -> Any:
    try:
        return onnx_session(path, threads)
    except Exception as error:  # onnxruntime raises its own exception types for a file it cannot read
        raise ReaderError(
            f"The reader's model file {path} is damaged ({error}). {_restore_hint(path)}"
        ) from error


def _pair_tokenizer(max_tokens: int) -> Any:
    """MiniLM's word-piece tokenizer (the reader's vocabulary), cutting the longer of the pair first."""
    tokenizer = load_tokenizer(max_tokens)
    tokenizer.enable_truncation(max_length=max_tokens, strategy="longest_first")
    return tokenizer
