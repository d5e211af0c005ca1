"""Split articles into passages sized for the embedding model, keeping each passage's span."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from llama_index.core.node_parser import SentenceSplitter

from rag.config import Settings
from rag.documents import Article, Chunk
from rag.embeddings import load_tokenizer


class ArticleTokens:
    """Counts the embedding model's tokens in pieces of one article, from one encoding of the whole text.

    The sentence splitter measures every piece it considers (about 40 per article); tokenizing each of them
    again cost 3% of ingest. A piece found in the article is measured by the tokens that start inside it;
    anything else is tokenized as before.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.text = ""
        self.starts: list[int] = []

    def prepare(self, text: str) -> None:
        """Encode the article the next pieces come from ("" to forget it)."""
        self.text = text
        self.starts = [start for start, _ in self.tokenizer.encode(text, add_special_tokens=False).offsets]

    def __call__(self, piece: str) -> Sequence[int]:
        at = self.text.find(piece) if piece and self.text else -1
        if at < 0:
            return self.tokenizer.encode(piece, add_special_tokens=False).ids  # type: ignore[no-any-return]
        return range(bisect_left(self.starts, at + len(piece)) - bisect_left(self.starts, at))


class PassageSplitter:
    """llama-index's sentence-aware splitter, sized in the embedding model's own tokens."""

    def __init__(self, config: Settings) -> None:
        self.tokens = ArticleTokens(load_tokenizer(max_tokens=100_000))
        self.sentence_splitter = SentenceSplitter(
            chunk_size=config.chunk_tokens,
            chunk_overlap=config.chunk_overlap,
            tokenizer=self.tokens,
            paragraph_separator="\n\n",
            include_metadata=False,
            include_prev_next_rel=False,
        )

    def split(self, article: Article) -> list[str]:
        """Return the passages of an article's text, verbatim."""
        self.tokens.prepare(article.text)
        try:
            return self.sentence_splitter.split_text(article.text)
        finally:
            self.tokens.prepare("")


def make_splitter(config: Settings) -> PassageSplitter:
    """Build the splitter the settings ask for."""
    return PassageSplitter(config)


def split_article(article: Article, splitter: PassageSplitter) -> list[Chunk]:
    """Split one article into passages, each with its character span in the article text."""
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split(article):
        start = _locate(article.text, piece, cursor)
        end = start + len(piece)
        chunks.append(Chunk(article.article_id, len(chunks), article.text[start:end], start, end))
        # Overlapping passages start before the previous one ends.
        cursor = start + 1
    return chunks


def embedding_text(article: Article, chunk: Chunk) -> str:
    """The text embedded for a passage: its article's headline, then the passage.

    A passage deep in an article rarely repeats what the story is about; the headline says it, and for a
    page whose body is only a video player it is all there is.
    """
    return f"{article.title}\n\n{chunk.text}" if article.title else chunk.text


def _locate(text: str, piece: str, cursor: int) -> int:
    """Find where a passage starts; the splitter keeps text verbatim, so a search suffices."""
    found = text.find(piece, cursor)
    if found < 0:
        found = text.find(piece)
    if found < 0:
        raise ValueError(f"passage not found in its article text: {piece[:60]!r}")
    return found
