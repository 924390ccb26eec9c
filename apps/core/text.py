"""Small text checks shared by the apps."""

from __future__ import annotations


def ascii_digits(value: str) -> bool:
    """True for a non-empty string of the digits 0-9 only.

    str.isdigit() also accepts superscripts and circled digits ("³", "①"), which int()
    refuses: an id checked with it and then converted was a 500 on such input.
    """
    return value.isascii() and value.isdigit()
