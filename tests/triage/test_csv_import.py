from pathlib import Path

import pytest

from apps.core.exceptions import ValidationError
from apps.triage.csv_import import training_csv_parse, training_csv_read
from tests.triage.data import csv_bytes


def test_missing_category_column_is_refused_naming_it():
    # given
    data = csv_bytes([("my card is lost", "card_lost")], header="text,label")
    # when
    with pytest.raises(ValidationError) as refused:
        training_csv_parse(data=data)
    # then
    assert refused.value.message == (
        "missing column 'category' (found: 'text', 'label'); the first line must name the "
        "columns `text` and `category`"
    )


def test_header_names_are_matched_ignoring_case_and_spaces():
    # given
    data = csv_bytes([("my card is lost", "card_lost")], header=" Text , CATEGORY")
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert [(row.text, row.intent) for row in parsed.rows] == [("my card is lost", "card_lost")]


def test_empty_and_emoji_only_texts_are_skipped_with_their_line():
    # given
    data = csv_bytes([("", "card_lost"), ("🙂🙂", "card_lost"), ("card gone", "card_lost")])
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert [(row.line, row.reason) for row in parsed.report.skipped] == [
        (2, "empty text"),
        (3, "no words: the text has no letters or digits"),
    ]
    assert [row.text for row in parsed.rows] == ["card gone"]
    assert parsed.report.rows_read == 3


def test_duplicate_rows_are_skipped_pointing_at_the_first():
    # given: the same text twice, differing only in case and spacing
    data = csv_bytes([("My card  is lost", "card_lost"), ("my card is lost", "card_lost")])
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert [(row.line, row.reason) for row in parsed.report.skipped] == [
        (3, "duplicate: same text and category as line 2")
    ]
    assert len(parsed.rows) == 1


def test_a_one_megabyte_line_is_skipped_and_the_rest_imported():
    # given
    huge = "a" * 1_000_000
    data = csv_bytes([(huge, "card_lost"), ("card gone", "card_lost")])
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert [(row.line, row.reason) for row in parsed.report.skipped] == [
        (2, "too long: 1000000 characters, the limit is 2000")
    ]
    assert [row.text for row in parsed.rows] == ["card gone"]


def test_a_file_not_in_utf8_is_refused_with_the_line_and_the_fix():
    # given: Latin-1 bytes on the third line
    data = "text,category\nhello there,greeting\ncafé crème,order\n".encode("latin-1")
    # when
    with pytest.raises(ValidationError) as refused:
        training_csv_parse(data=data)
    # then
    assert refused.value.message == (
        "the file is not UTF-8 (byte 0xe9 on line 3 cannot be decoded): save it as UTF-8 "
        "(in a spreadsheet: 'CSV UTF-8') and import it again"
    )


def test_a_utf16_file_is_refused():
    # given
    data = "text,category\nhello there,greeting\n".encode("utf-16")
    # when
    with pytest.raises(ValidationError) as refused:
        training_csv_parse(data=data)
    # then
    assert "not UTF-8" in refused.value.message or "NUL byte" in refused.value.message


def test_category_names_are_kept_verbatim_and_empty_ones_skipped():
    # given: Banking77 spells one intent with a question mark
    data = csv_bytes(
        [("card payment reverted", "reverted_card_payment?"), ("card gone", ""), ("a", "x\ty")]
    )
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert [row.intent for row in parsed.rows] == ["reverted_card_payment?"]
    assert [(row.line, row.reason) for row in parsed.report.skipped] == [
        (3, "empty category"),
        (4, "bad category name: 'x\\ty' holds control characters"),
    ]


def test_an_empty_file_is_refused():
    # when
    with pytest.raises(ValidationError) as refused:
        training_csv_parse(data=b"")
    # then
    assert refused.value.message.startswith("the file is empty")


def test_blank_lines_and_a_byte_order_mark_are_tolerated():
    # given
    data = b"\xef\xbb\xbftext,category\n\ncard gone,card_lost\n\n"
    # when
    parsed = training_csv_parse(data=data)
    # then
    assert parsed.report.rows_read == 1
    assert parsed.report.skipped == []


def test_the_report_groups_skipped_rows_by_reason():
    # given
    data = csv_bytes([("", "a"), ("", "a"), ("x" * 3000, "a"), ("fine", "a")])
    # when
    report = training_csv_parse(data=data).report
    # then
    assert report.reason_counts() == {"empty text": 2, "too long": 1}
    assert report.as_text().splitlines()[:3] == [
        "rows read: 4, skipped: 3",
        "  2 x empty text",
        "  1 x too long",
    ]


def test_a_missing_file_is_refused(tmp_path: Path):
    # when
    with pytest.raises(ValidationError) as refused:
        training_csv_read(path=tmp_path / "nope.csv")
    # then
    assert refused.value.message == f"no such file: {tmp_path / 'nope.csv'}"
