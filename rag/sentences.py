"""Sentences and their stemmed words, as the answerers quote them and the support check compares them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rag.retrieve import content_terms

# A sentence ends at . ! or ? (and any closing quote) before a space and a capital, digit or quote,
# or at a line break.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)]*\s+(?=[A-Z0-9\"“‘'(])|\s*\n\s*")
_ABBREVIATIONS = frozenset(
    "Mr Mrs Ms Dr St Jr Sr Gen Gov Sen Rep Col Lt Sgt Capt Prof Rev Inc Corp Co Ltd No vs etc "
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Mt Ft Ave Blvd".split()
)


def sentences(text: str) -> list[tuple[int, int]]:
    """Return the character spans of the sentences of a text, without surrounding spaces."""
    spans, start = [], 0
    for boundary in _BOUNDARY.finditer(text):
        if "\n" not in boundary[0] and _is_abbreviation(text, boundary.start()):
            continue
        spans.append((start, boundary.start() + len(boundary[0].rstrip())))
        start = boundary.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in (_strip(text, a, b) for a, b in spans) if b - a > 1]


def _is_abbreviation(text: str, period: int) -> bool:
    """Whether the dot at `period` ends an abbreviation such as U.S. or Gen. rather than a sentence."""
    if text[period] != ".":
        return False
    word = text[max(0, period - 12) : period].split()[-1:] or [""]
    token = word[0].lstrip("(\"'“‘")
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)*[A-Z]", token)) or token in _ABBREVIATIONS


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@lru_cache(maxsize=1)
def _porter() -> Any:
    from nltk.stem import PorterStemmer  # the stemmer needs no data files

    return PorterStemmer()


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    return str(_porter().stem(word))


def stems(text: str) -> set[str]:
    """The stemmed content words of a text."""
    return {stem(word) for word in content_terms(text)}


def closest_spans(claim: str, text: str) -> tuple[tuple[int, int], ...]:
    """The spans of the sentences of a text that share most words with a claim (none when none share)."""
    wanted = stems(claim)
    scored = [(len(wanted & stems(text[a:b])), (a, b)) for a, b in sentences(text)]
    best = max((score for score, _ in scored), default=0)
    return tuple(span for score, span in scored if best and score == best)


def plain_answer(text: str) -> str:
    """An answer's words as answers are matched (SQuAD's way): lower case, without accents, punctuation or
    articles."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def holds_answer(text: str, accepted: Sequence[str]) -> bool:
    """Whether any accepted answer appears in a text as whole words, both made plain."""
    said = f" {plain_answer(text)} "
    return any(f" {plain_answer(a)} " in said for a in accepted if plain_answer(a))
