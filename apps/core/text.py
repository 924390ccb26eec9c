"""Small text checks shared by the apps."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def ascii_digits(value: str) -> bool:
    """True for a non-empty string of the digits 0-9 only.

    str.isdigit() also accepts superscripts and circled digits ("³", "①"), which int()
    refuses: an id checked with it and then converted was a 500 on such input.
    """
    return value.isascii() and value.isdigit()


def text_stripped(value: Any, *, keep: Collection[str] = ()) -> Any:
    """`value` (JSON: dicts, lists, scalars) with every string emptied, except those in `keep`.

    For erasing personal data from a JSON column while the numbers and flags that metrics
    read (scores, counts, booleans) and the dict keys stay: "a" → "", a list of strings →
    [] (its items said nothing once emptied).
    """
    if isinstance(value, str):
        return value if value in keep else ""
    if isinstance(value, dict):
        return {key: text_stripped(item, keep=keep) for key, item in value.items()}
    if isinstance(value, list):
        items = [text_stripped(item, keep=keep) for item in value]
        return [item for item in items if item != ""]
    return value


def mentions_any(value: Any, needles: Collection[str]) -> bool:
    """True when a string somewhere in JSON `value` contains one of `needles` (case-folded)."""
    folded = [needle.casefold() for needle in needles if needle]
    if isinstance(value, str):
        text = value.casefold()
        return any(needle in text for needle in folded)
    if isinstance(value, dict):
        return any(mentions_any(item, folded) for item in value.values())
    if isinstance(value, list):
        return any(mentions_any(item, folded) for item in value)
    return False
