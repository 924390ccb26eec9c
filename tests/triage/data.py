"""A small synthetic support dataset: 5 intents x 30 examples, written for these tests."""

from __future__ import annotations

import csv
import io
from itertools import product

_INTENTS: dict[str, tuple[list[str], list[str]]] = {
    "card_lost": (
        [
            "I lost my {}",
            "my {} was stolen",
            "someone stole my {}",
            "I can't find my {} anywhere",
            "please block my {}, it is lost",
            "what do I do if my {} is missing",
        ],
        ["card", "debit card", "credit card", "bank card", "visa card"],
    ),
    "refund_request": (
        [
            "I want a refund for my {}",
            "how do I get my money back for the {}",
            "please refund the {}",
            "can I return the {} and be reimbursed",
            "I was charged twice for the {}, refund me",
            "refund request for {}",
        ],
        ["order", "shoes", "broken headphones", "subscription", "jacket"],
    ),
    "delivery_status": (
        [
            "where is my {}",
            "my {} has not arrived yet",
            "when will my {} be delivered",
            "track the delivery of my {}",
            "the {} is late, what is the shipping status",
            "has my {} shipped",
        ],
        ["parcel", "package", "order", "shipment", "delivery"],
    ),
    "password_reset": (
        [
            "I forgot my {}",
            "how do I reset my {}",
            "I can't log in, I need a new {}",
            "change my {} please",
            "the {} reset email never came",
            "my {} does not work anymore",
        ],
        ["password", "login password", "account password", "pin code", "passcode"],
    ),
    "opening_hours": (
        [
            "what are your {}",
            "when are you open {}",
            "are you open {}",
            "what time do you close {}",
            "opening hours {}",
            "is the store open {}",
        ],
        ["on sunday", "today", "on public holidays", "this weekend", "tomorrow morning"],
    ),
}

INTENT_NAMES = sorted(_INTENTS)


def synthetic_rows() -> list[tuple[str, str]]:
    """(text, intent) pairs: each template with each slot, 30 per intent."""
    return [
        (template.format(slot), intent)
        for intent, (templates, slots) in _INTENTS.items()
        for template, slot in product(templates, slots)
    ]


# Messages not in the training set, one per intent, phrased differently.
HELD_OUT = [
    ("Help, somebody took my card from my bag", "card_lost"),
    ("I would like my money back for the faulty order", "refund_request"),
    ("Where is the package I ordered last week?", "delivery_status"),
    ("I forgot my password and cannot sign in", "password_reset"),
    ("Are you open on Sunday afternoon?", "opening_hours"),
]

OUT_OF_SCOPE = [
    "What is the capital of Australia?",
    "Write me a poem about the sea and the moon",
]


def csv_bytes(rows: list[tuple[str, str]], *, header: str = "text,category") -> bytes:
    buffer = io.StringIO()
    buffer.write(header + "\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue().encode()
