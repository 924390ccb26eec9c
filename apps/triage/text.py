"""Text normalisation shared by import de-duplication and classification."""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Case-folded, NFKC, single-spaced: two texts that differ only so are duplicates."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def has_words(text: str) -> bool:
    """True when the text holds a letter or a digit (emoji and punctuation alone do not)."""
    return any(character.isalnum() for character in text)
