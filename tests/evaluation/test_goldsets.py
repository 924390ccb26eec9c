"""Gold sets in and out: TSV and JSON lines, per-line reports, idempotent re-imports."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.evaluation.goldsets import FIXTURE_SETS, gold_set_export, gold_set_import
from apps.evaluation.models import GoldItem, GoldSet

pytestmark = pytest.mark.django_db

TSV = (
    "question\tintent\texpected_article\tnote\n"
    "i forgot my password\treset_password\taccount/reset-password.md\t\n"
    "where is my parcel\ttrack_order\tshipping/tracking.md|shipping/delays.md\t\n"
    "I want to talk to a person\t\taccount/reset-password.md\tasks_for_human\n"
    "what is the meaning of life\t\t\tout_of_scope\n"
)


def test_a_tsv_import_stores_items_and_a_second_import_changes_nothing():
    # when
    gold_set, report = gold_set_import(text=TSV, name="demo")
    again, second = gold_set_import(text=TSV, name="demo")
    # then
    assert (report.added, report.errors) == (4, [])
    assert (second.added, second.updated, second.unchanged) == (0, 0, 4)
    assert again.pk == gold_set.pk and GoldItem.objects.count() == 4
    parcel = GoldItem.objects.get(question="where is my parcel")
    assert parcel.expected_articles == ["shipping/tracking.md", "shipping/delays.md"]
    assert parcel.needs_person is False
    # a named article with a note saying a person must answer, and no article at all
    assert GoldItem.objects.get(note="asks_for_human").needs_person is True
    assert GoldItem.objects.get(note="out_of_scope").needs_person is True


def test_bad_lines_are_reported_by_number_and_the_good_ones_kept():
    text = (
        "question\tintent\tconversation\n"
        "good one\treset_password\t\n"
        "\treset_password\t\n"
        'follow-up\ttrack_order\t[{"role": "customer", "text": "my parcel"}]\n'
        'bad turns\ttrack_order\t[{"role": "boss", "text": "x"}]\n'
        "not json\ttrack_order\t[oops\n"
        "good one\treset_password\t\n"
    )
    _, report = gold_set_import(text=text, name="mixed")
    assert report.added == 2
    assert report.errors == [
        "line 3: no question",
        'line 5: conversation must be a list of {"role": customer|agent|copilot, "text": ...}',
        "line 6: conversation is not JSON: Expecting value",
        "line 7: the same question again (kept the first)",
    ]
    follow_up = GoldItem.objects.get(question="follow-up")
    assert follow_up.conversation == [{"role": "customer", "text": "my parcel"}]


def test_a_file_without_a_question_column_is_refused_as_a_whole():
    _, report = gold_set_import(text="text\tintent\nhello\tx\n", name="nope")
    assert report.errors == [
        "line 1: the header line must name a `question` column (tab-separated)"
    ]
    assert not GoldItem.objects.exists()


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_an_exported_set_imports_back_the_same(fmt):
    gold_set, _ = gold_set_import(text=TSV, name="demo")
    follow_up = {
        "question": "and if the link expired?",
        "conversation": [{"role": "customer", "text": "i forgot my password"}],
        "expected_intent": "reset_password",
        "expected_articles": ["account/reset-password.md"],
        "reference_reply": "Ask for a new link: each one works for an hour.",
    }
    gold_set_import(text=json.dumps(follow_up), name="demo")
    exported = "\n".join(gold_set_export(gold_set=gold_set, fmt=fmt))
    # when
    copy, report = gold_set_import(text=exported, name="copy")
    # then
    assert report.errors == [] and report.added == 5
    fields = ["key", "question", "conversation", "expected_intent", "expected_articles"]
    fields += ["needs_person", "note", "reference_reply"]
    assert list(copy.items.order_by("key").values(*fields)) == list(
        gold_set.items.order_by("key").values(*fields)
    )


def test_the_command_loads_the_shipped_gold_sets_and_reports_bad_files(tmp_path):
    out = io.StringIO()
    call_command("eval_goldset_import", "--fixtures", stdout=out)
    assert set(GoldSet.objects.values_list("name", flat=True)) == set(FIXTURE_SETS)
    lines = FIXTURE_SETS["demo-copilot"].read_text().strip().count("\n")
    assert GoldSet.objects.get(name="demo-copilot").items.count() == lines
    # a JSON-lines file with one bad line: stored, and the command fails naming the line
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"question": "hello", "expected_articles": ["a.md"]}) + "\n[1]\n")
    with pytest.raises(CommandError, match="1 line"):
        call_command("eval_goldset_import", str(path), "--name", "json", stdout=out)
    assert "line 2: a line must be a JSON object" in out.getvalue()
    assert GoldSet.objects.get(name="json").items.count() == 1
