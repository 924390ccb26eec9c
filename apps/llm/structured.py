"""The structured output contract every drafter answers with, and its tolerant parser.

A model returns one JSON object:

    {"reply": "Hello, ...", "citations": ["P1", "P3"], "answerable": true}

- reply: the text for the customer (may be empty only when answerable is false);
- citations: ids of the passages the reply relies on (a list of strings, may be empty);
- answerable: whether the passages answer the customer's question.

`reply_parse` accepts the object wrapped in a code fence or followed by chatter, and raises
`MalformedOutput` on anything else (empty output, no object, wrong types). Checking that
the citations are passages that were actually given is the caller's validation, not this.

`ReplyStreamExtractor` turns the raw streamed JSON into the reply text as it arrives, so a
customer watching the stream sees words, not braces. "reply" is asked for first
(`OUTPUT_INSTRUCTIONS`) so that streaming shows text early.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

from apps.llm.exceptions import MalformedOutput

OUTPUT_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else, with keys in this order: "
    '"reply" (string: your reply to the customer), '
    '"citations" (array of the ids of the passages your reply uses, e.g. ["P1"]), '
    '"answerable" (true if the passages answer the customer\'s question, else false). '
    "Use only the passages; if they do not answer the question, set answerable to false."
)
# What a provider that supports it is asked for (litellm drops it where unsupported).
RESPONSE_FORMAT = {"type": "json_object"}

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class StructuredReply:
    reply: str
    citations: tuple[str, ...]
    answerable: bool

    def as_dict(self) -> dict:
        return {
            "reply": self.reply,
            "citations": list(self.citations),
            "answerable": self.answerable,
        }


def _first_object(text: str) -> dict | None:
    decoder = json.JSONDecoder()
    for start in (index for index, char in enumerate(text) if char == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def reply_parse(text: str | None) -> StructuredReply:
    """The StructuredReply in a model's output; raises MalformedOutput when there is none."""
    if text is None or not text.strip():
        raise MalformedOutput("the model returned empty output")
    fenced = _FENCE.search(text)
    candidate = _first_object(fenced.group(1)) if fenced else None
    if candidate is None:
        candidate = _first_object(text)
    if candidate is None:
        raise MalformedOutput("the model's output holds no JSON object", detail=text[:500])
    reply = candidate.get("reply")
    answerable = candidate.get("answerable")
    citations = candidate.get("citations", [])
    if not isinstance(reply, str):
        raise MalformedOutput("'reply' is missing or not a string", detail=text[:500])
    if not isinstance(answerable, bool):
        raise MalformedOutput("'answerable' is missing or not true/false", detail=text[:500])
    if not isinstance(citations, list) or not all(isinstance(c, str) for c in citations):
        raise MalformedOutput("'citations' is not a list of passage ids", detail=text[:500])
    if answerable and not reply.strip():
        raise MalformedOutput("'reply' is empty although 'answerable' is true", detail=text[:500])
    return StructuredReply(
        reply=reply.strip(),
        citations=tuple(dict.fromkeys(citations)),
        answerable=answerable,
    )


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _high_surrogate(hex_digits: str) -> bool:
    # An emoji arrives as two \u escapes; they must be decoded together.
    return len(hex_digits) == 4 and hex_digits.lower()[:2] in {"d8", "d9", "da", "db"}


@dataclass
class ReplyStreamExtractor:
    """Feed raw JSON text deltas; get back the newly decoded characters of the "reply" value.

    A small state machine rather than re-parsing the whole buffer on every chunk: the work
    per chunk is proportional to the chunk. Anything it cannot follow (reply not a string,
    reply not the first key) simply yields nothing; the final text is parsed by `reply_parse`.
    """

    _buffer: str = ""
    _position: int = 0
    _state: str = "seek"  # seek -> value -> done

    def feed(self, delta: str) -> str:
        self._buffer += delta
        if self._state == "seek":
            match = re.search(r'"reply"\s*:\s*"', self._buffer)
            if not match:
                return ""
            self._state = "value"
            self._position = match.end()
        if self._state != "value":
            return ""
        out: list[str] = []
        text = self._buffer
        index = self._position
        while index < len(text):
            char = text[index]
            if char == '"':
                self._state = "done"
                index += 1
                break
            if char != "\\":
                out.append(char)
                index += 1
                continue
            if index + 1 >= len(text):
                break  # wait for the rest of the escape
            code = text[index + 1]
            if code == "u":
                end = index + 12 if _high_surrogate(text[index + 2 : index + 6]) else index + 6
                if end > len(text):
                    break
                # An invalid escape is skipped: the final parse reports the output as malformed.
                with contextlib.suppress(ValueError):
                    out.append(json.loads(f'"{text[index:end]}"'))
                index = end
            else:
                out.append(_ESCAPES.get(code, code))
                index += 2
        self._position = index
        return "".join(out)
