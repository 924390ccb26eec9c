"""Gold sets in and out: TSV (the benchmark files' format) and JSON lines.

TSV: a header line, then one item per line. Columns (any order; only `question` required):
  question                   the customer's message
  intent | expected_intent   the intent it should be classified as
  expected_article | expected | expected_articles
                             knowledge-base external id(s) answering it, `|`-separated;
                             empty: no article answers it, a person must
  note                       why a person must answer (asks_for_human, out_of_scope,
                             no_answer, other_language), or any remark
  reference_reply            a reply a good agent would send
  conversation               earlier turns as JSON: [{"role": "customer", "text": "..."}]

JSON lines: one object per line with the same names (`expected_articles` a list,
`conversation` a list, `needs_person` optional, `origin` optional).

An import reports every bad line (its number and what is wrong) and stores the good ones;
re-importing a question updates its item instead of adding a second.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from apps.core.exceptions import ValidationError
from apps.evaluation.models import GoldItem, GoldSet
from apps.knowledge.models import Article
from apps.triage.text import normalize_text

# Notes that mean a person must answer even when an article is named.
HANDOFF_NOTES = frozenset({"asks_for_human", "out_of_scope", "no_answer", "other_language"})
ROLES = frozenset({"customer", "agent", "copilot"})
MAX_QUESTION_CHARS = 20_000
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The gold sets the repository ships, loaded by `eval_goldset_import --fixtures`.
FIXTURE_SETS = {
    "demo-copilot": FIXTURES / "demo/gold/copilot.tsv",
    "demo-retrieval": FIXTURES / "demo/gold/retrieval.tsv",
}


@dataclass
class GoldImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # "line 4: ..."
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.errors)} line(s) refused"
        )


@dataclass(frozen=True)
class GoldRow:
    question: str
    conversation: tuple[tuple[str, str], ...] = ()
    expected_intent: str = ""
    expected_articles: tuple[str, ...] = ()
    needs_person: bool = False
    note: str = ""
    reference_reply: str = ""
    origin: str = ""

    @property
    def key(self) -> str:
        return gold_key(self.question, self.conversation)

    def fields(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "conversation": [{"role": role, "text": text} for role, text in self.conversation],
            "expected_intent": self.expected_intent,
            "expected_articles": list(self.expected_articles),
            "needs_person": self.needs_person,
            "note": self.note,
            "reference_reply": self.reference_reply,
            "origin": self.origin,
        }


def gold_key(question: str, conversation: Iterable[tuple[str, str]] = ()) -> str:
    turns = "\n".join(f"{role}:{normalize_text(text)}" for role, text in conversation)
    return hashlib.sha256(f"{turns}\n>{normalize_text(question)}".encode()).hexdigest()


def _row(raw: dict[str, Any], *, origin: str) -> GoldRow:
    """A validated item from one line's values; ValidationError says what is wrong."""
    question = str(raw.get("question") or "").strip()
    if not question:
        raise ValidationError("no question")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValidationError(f"the question is over {MAX_QUESTION_CHARS} characters")
    articles = raw.get("expected_articles", raw.get("expected_article", raw.get("expected")))
    if articles is None or articles == "":
        articles = []
    if isinstance(articles, str):
        articles = [part.strip() for part in articles.split("|") if part.strip()]
    if not isinstance(articles, list) or not all(isinstance(a, str) for a in articles):
        raise ValidationError("expected_articles must be a list of external ids")
    conversation = raw.get("conversation") or []
    if isinstance(conversation, str):
        try:
            conversation = json.loads(conversation)
        except json.JSONDecodeError as error:
            raise ValidationError(f"conversation is not JSON: {error.msg}") from None
    turns = []
    for turn in conversation if isinstance(conversation, list) else [None]:
        if not (
            isinstance(turn, dict)
            and turn.get("role") in ROLES
            and isinstance(turn.get("text"), str)
            and turn["text"].strip()
        ):
            raise ValidationError(
                'conversation must be a list of {"role": customer|agent|copilot, "text": ...}'
            )
        turns.append((turn["role"], turn["text"].strip()))
    note = str(raw.get("note") or "").strip()
    needs_person = raw.get("needs_person")
    if needs_person is None:
        needs_person = not articles or note in HANDOFF_NOTES
    elif not isinstance(needs_person, bool):
        raise ValidationError("needs_person must be true or false")
    return GoldRow(
        question=question,
        conversation=tuple(turns),
        expected_intent=str(raw.get("expected_intent", raw.get("intent")) or "").strip(),
        expected_articles=tuple(dict.fromkeys(articles)),
        needs_person=needs_person,
        note=note[:100],
        reference_reply=str(raw.get("reference_reply") or "").strip(),
        origin=str(raw.get("origin") or origin)[:500],
    )


def gold_rows_read(text: str, *, name: str) -> Iterator[tuple[int, GoldRow | str]]:
    """(line number, row or what is wrong with that line) for a TSV or JSON-lines text;
    the format is JSON lines when the first non-blank character is `{`."""
    if text.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise ValidationError("a line must be a JSON object")
                yield number, _row(raw, origin=f"{name} line {number}")
            except json.JSONDecodeError as error:
                yield number, f"not JSON: {error.msg}"
            except ValidationError as error:
                yield number, str(error)
        return
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    if not reader.fieldnames or "question" not in reader.fieldnames:
        yield 1, "the header line must name a `question` column (tab-separated)"
        return
    for raw in reader:
        number = reader.line_num
        if None in raw:
            yield number, "more columns than the header names (a tab inside a value?)"
            continue
        try:
            yield number, _row(raw, origin=f"{name} line {number}")
        except ValidationError as error:
            yield number, str(error)


@transaction.atomic
def gold_set_import(
    *, text: str, name: str, origin: str = "", replace: bool = False
) -> tuple[GoldSet, GoldImportReport]:
    """Store the text's items in gold set `name` (created when new). With `replace`, items
    not in the text are removed: the set becomes the file."""
    gold_set, _ = GoldSet.objects.get_or_create(name=name, defaults={"origin": origin})
    report = GoldImportReport()
    existing = {item.key: item for item in gold_set.items.all()}
    seen: set[str] = set()
    known = set(Article.objects.values_list("external_id", flat=True))
    for number, row in gold_rows_read(text, name=origin or name):
        if isinstance(row, str):
            report.errors.append(f"line {number}: {row}")
            continue
        if row.key in seen:
            report.errors.append(f"line {number}: the same question again (kept the first)")
            continue
        seen.add(row.key)
        missing = [a for a in row.expected_articles if a not in known]
        if missing:
            report.warnings.append(
                f"line {number}: no article {', '.join(missing)} in the knowledge base (yet)"
            )
        fields = row.fields()
        item = existing.get(row.key)
        if item is None:
            GoldItem.objects.create(gold_set=gold_set, key=row.key, **fields)
            report.added += 1
        elif any(
            getattr(item, name) != value for name, value in fields.items() if name != "origin"
        ):
            GoldItem.objects.filter(pk=item.pk).update(**fields)
            report.updated += 1
        else:
            report.unchanged += 1
    if replace:
        gold_set.items.exclude(key__in=seen).delete()
    gold_set.save(update_fields=["updated_at"])
    return gold_set, report


def gold_set_export(*, gold_set: GoldSet, fmt: str = "jsonl") -> Iterator[str]:
    """The set's items as lines of JSON or TSV (with its header), importable again."""
    items = gold_set.items.order_by("id")
    if fmt == "jsonl":
        for item in items.iterator():
            fields = {name: getattr(item, name) for name in GoldRow.__dataclass_fields__}
            yield json.dumps(fields, ensure_ascii=False)
        return
    if fmt != "tsv":
        raise ValidationError(f"unknown format {fmt!r}: jsonl or tsv", field="format")
    columns = ["question", "expected_intent", "expected_articles", "note", "reference_reply"]
    yield "\t".join([*columns, "conversation"])
    for item in items.iterator():
        values = [
            item.question,
            item.expected_intent,
            "|".join(item.expected_articles),
            item.note,
            item.reference_reply,
            json.dumps(item.conversation, ensure_ascii=False) if item.conversation else "",
        ]
        yield "\t".join(" ".join(str(value).split()) for value in values)
