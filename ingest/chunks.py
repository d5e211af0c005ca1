"""Split articles into passages sized for the embedding model, keeping each passage's span."""

from __future__ import annotations

from collections.abc import Callable

from llama_index.core.node_parser import SentenceSplitter

from rag.config import Settings
from rag.documents import Article, Chunk
from rag.embeddings import load_tokenizer


def make_splitter(config: Settings) -> SentenceSplitter:
    """Build llama-index's sentence-aware splitter, counting the embedding model's own tokens."""
    tokenizer = load_tokenizer(max_tokens=100_000)
    count: Callable[[str], list[int]] = lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    return SentenceSplitter(
        chunk_size=config.chunk_tokens,
        chunk_overlap=config.chunk_overlap,
        tokenizer=count,
        paragraph_separator="\n\n",
        include_metadata=False,
        include_prev_next_rel=False,
    )


def split_article(article: Article, splitter: SentenceSplitter) -> list[Chunk]:
    """Split one article into passages, each with its character span in the article text."""
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split_text(article.text):
        start = _locate(article.text, piece, cursor)
        end = start + len(piece)
        chunks.append(Chunk(article.article_id, len(chunks), article.text[start:end], start, end))
        # Overlapping passages start before the previous one ends.
        cursor = start + 1
    return chunks


def _locate(text: str, piece: str, cursor: int) -> int:
    """Find where a passage starts; the splitter keeps text verbatim, so a search suffices."""
    found = text.find(piece, cursor)
    if found < 0:
        found = text.find(piece)
    if found < 0:
        raise ValueError(f"passage not found in its article text: {piece[:60]!r}")
    return found
