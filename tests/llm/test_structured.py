"""The structured output contract: tolerant parsing and the streaming reply extractor."""

from __future__ import annotations

import json

import pytest

from apps.llm.exceptions import MalformedOutput
from apps.llm.structured import ReplyStreamExtractor, StructuredReply, reply_parse

GOOD = '{"reply": "Hi there.", "citations": ["P1", "P2", "P1"], "answerable": true}'


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"```json\n{GOOD}\n```",
        f"Here you go:\n```\n{GOOD}\n```\nAnything else?",
        f"{GOOD}\n\nI hope that helps {{not json}}",
        f"Sure {{broken}} then {GOOD}",
    ],
)
def test_reply_parse_tolerates_fences_and_surrounding_text(text):
    assert reply_parse(text) == StructuredReply("Hi there.", ("P1", "P2"), True)


def test_citations_may_be_missing_and_reply_empty_when_not_answerable():
    assert reply_parse('{"reply": "", "answerable": false}') == StructuredReply("", (), False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "empty output"),
        ("   \n", "empty output"),
        ("I think refunds take 5 days.", "no JSON object"),
        ('["reply", "x"]', "no JSON object"),
        ('{"citations": [], "answerable": true}', "'reply' is missing"),
        ('{"reply": "x", "citations": []}', "'answerable' is missing"),
        ('{"reply": "x", "answerable": "yes"}', "'answerable' is missing"),
        ('{"reply": "x", "citations": [1], "answerable": true}', "'citations' is not a list"),
        ('{"reply": " ", "citations": [], "answerable": true}', "'reply' is empty"),
    ],
)
def test_malformed_output_raises_a_named_error(text, message):
    with pytest.raises(MalformedOutput) as raised:
        reply_parse(text)
    assert message in raised.value.message


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_stream_extractor_yields_exactly_the_decoded_reply(size):
    # given: escapes, unicode escapes and a surrogate pair, cut at every chunk size
    reply = 'Line one\nsays "hi" \\ caf\u00e9 \U0001f600 done'
    raw = json.dumps({"reply": reply, "citations": ["P1"], "answerable": True})
    extractor = ReplyStreamExtractor()
    # when
    out = "".join(extractor.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    # then
    assert out == reply


def test_stream_extractor_ignores_output_without_a_reply_string():
    extractor = ReplyStreamExtractor()
    assert extractor.feed('{"answer": "x", "reply": 5}') == ""
