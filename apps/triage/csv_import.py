"""Reading a `text,category` training CSV into labelled rows plus a report of what was skipped.

Whole-file problems (not UTF-8, no `text`/`category` header, unreadable CSV) are refusals
that say what to fix; row problems (empty text, too long, duplicate, bad intent name) skip
the row and are listed with their line number.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core.exceptions import ValidationError
from apps.triage.text import has_words, normalize_text

REQUIRED_COLUMNS = ("text", "category")
# Past Python's 128 KiB default, so a 1 MB line is read and skipped with a reason rather
# than stopping the whole import with a csv.Error.
csv.field_size_limit(64 * 1024 * 1024)


@dataclass(frozen=True)
class LabelledText:
    text: str
    intent: str


@dataclass(frozen=True)
class SkippedRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    rows_read: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    skipped_intents: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return len(self.skipped)

    def reason_counts(self) -> dict[str, int]:
        return dict(Counter(_reason_kind(row.reason) for row in self.skipped))

    def as_json(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_skipped": self.rows_skipped,
            "skipped_by_reason": self.reason_counts(),
            "skipped": [{"line": row.line, "reason": row.reason} for row in self.skipped[:200]],
            "skipped_intents": self.skipped_intents,
            "notes": self.notes,
        }

    def as_text(self, *, rows_listed: int = 20) -> str:
        lines = [f"rows read: {self.rows_read}, skipped: {self.rows_skipped}"]
        for kind, count in sorted(self.reason_counts().items()):
            lines.append(f"  {count} x {kind}")
        for row in self.skipped[:rows_listed]:
            lines.append(f"  line {row.line}: {row.reason}")
        if self.rows_skipped > rows_listed:
            lines.append(f"  … and {self.rows_skipped - rows_listed} more skipped rows")
        for intent, reason in sorted(self.skipped_intents.items()):
            lines.append(f"  intent {intent!r} skipped: {reason}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


@dataclass
class CsvRows:
    rows: list[LabelledText]
    report: ImportReport


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValidationError(
            f"the file is not UTF-8 (byte 0x{data[error.start]:02x} on line {line} cannot be "
            "decoded): save it as UTF-8 (in a spreadsheet: 'CSV UTF-8') and import it again",
            field="file",
        ) from None


def training_csv_parse(*, data: bytes, max_text_chars: int | None = None) -> CsvRows:
    """Labelled rows of a `text,category` CSV and the report of skipped rows.

    Raises ValidationError (naming the fix) for a file that cannot be used at all.
    """
    limit = max_text_chars or settings.TRIAGE_MAX_EXAMPLE_CHARS
    content = _decode(data)
    if "\x00" in content:
        line = content[: content.index("\x00")].count("\n") + 1
        raise ValidationError(
            f"the file holds a NUL byte on line {line}: it is not a text CSV (UTF-16 or a "
            "spreadsheet file?); export it as CSV UTF-8",
            field="file",
        )
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError(
            "the file is empty: it needs a header line `text,category` and one row per example",
            field="file",
        ) from None
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        found = ", ".join(repr(name) for name in columns) or "none"
        raise ValidationError(
            f"missing column {' and '.join(repr(m) for m in missing)} (found: {found}); "
            "the first line must name the columns `text` and `category`",
            field="file",
        )
    text_column, intent_column = columns.index("text"), columns.index("category")
    report = ImportReport()
    rows: list[LabelledText] = []
    first_line_of: dict[tuple[str, str], int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not value.strip() for value in record):
                continue  # blank line: not a row
            report.rows_read += 1
            text = record[text_column].strip() if text_column < len(record) else ""
            intent = record[intent_column].strip() if intent_column < len(record) else ""
            reason = _row_problem(text, intent, limit)
            if reason is None:
                key = (normalize_text(text), intent)
                if key in first_line_of:
                    reason = f"duplicate: same text and category as line {first_line_of[key]}"
                else:
                    first_line_of[key] = line
            if reason:
                report.skipped.append(SkippedRow(line=line, reason=reason))
                continue
            rows.append(LabelledText(text=text, intent=intent))
    except csv.Error as error:
        raise ValidationError(
            f"the CSV cannot be read past line {reader.line_num}: {error}; check the quotes "
            "on that line",
            field="file",
        ) from None
    return CsvRows(rows=rows, report=report)


def _row_problem(text: str, intent: str, limit: int) -> str | None:
    if not text:
        return "empty text"
    if not has_words(text):
        return "no words: the text has no letters or digits"
    if len(text) > limit:
        return f"too long: {len(text)} characters, the limit is {limit}"
    if not intent:
        return "empty category"
    if len(intent) > 100:
        return "bad category name: longer than 100 characters"
    if not intent.isprintable():
        return f"bad category name: {intent[:60]!r} holds control characters"
    return None


def training_csv_read(*, path: Path, max_file_bytes: int | None = None) -> CsvRows:
    """`training_csv_parse` of a file on disk, refusing a file larger than the limit."""
    limit = max_file_bytes or settings.TRIAGE_MAX_CSV_BYTES
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}", field="file") from None
    if size > limit:
        raise ValidationError(
            f"the file is {size} bytes, over the {limit}-byte limit (TRIAGE_MAX_CSV_BYTES)",
            field="file",
        )
    return training_csv_parse(data=path.read_bytes())
