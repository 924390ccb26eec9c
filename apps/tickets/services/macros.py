"""Writes of canned replies: an import from CSV, one row a macro, with a per-line report."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.db import transaction

from apps.tickets.macros import placeholders_unknown
from apps.tickets.models import Macro

_SHORTCUT = re.compile(r"^[-a-z0-9_]{1,40}$")


@dataclass
class MacroImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: what is wrong"


def macros_import(*, text: str) -> MacroImportReport:
    """Create or update macros from CSV text with the columns shortcut, name, body (a
    header line). Bad lines are reported and skipped; the good ones are stored, each
    line on its own (one transaction a line): nothing stored before is lost."""
    report = MacroImportReport()
    reader = csv.DictReader(io.StringIO(text))
    missing = {"shortcut", "name", "body"} - set(reader.fieldnames or [])
    if missing:
        report.errors.append(f"line 1: missing columns {', '.join(sorted(missing))}")
        return report
    for line, row in enumerate(reader, start=2):
        shortcut = (row.get("shortcut") or "").strip().lstrip("/").lower()
        name = (row.get("name") or "").strip()
        body = (row.get("body") or "").replace("\\n", "\n").strip()
        problem = _problem(shortcut, name, body)
        if problem:
            report.errors.append(f"line {line}: {problem}")
            continue
        with transaction.atomic():
            existing = Macro.objects.select_for_update().filter(shortcut=shortcut).first()
            if existing is None:
                Macro.objects.create(shortcut=shortcut, name=name, body=body)
                report.created += 1
            elif (existing.name, existing.body, existing.is_active) == (name, body, True):
                report.unchanged += 1
            else:
                Macro.objects.filter(pk=existing.pk).update(name=name, body=body, is_active=True)
                report.updated += 1
    return report


def _problem(shortcut: str, name: str, body: str) -> str:
    if not _SHORTCUT.match(shortcut):
        return f"shortcut {shortcut!r} must be 1 to 40 of a-z, 0-9, - and _"
    if not name:
        return "the name is empty"
    if not body:
        return "the body is empty"
    unknown = placeholders_unknown(body)
    if unknown:
        return f"unknown placeholder(s) {', '.join(unknown)}"
    return ""
