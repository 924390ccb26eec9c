"""Demo setup (idempotent) and `copilot_calibrate` on a small gold set."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.copilot.models import (
    Calibration,
    Draft,
    IntentArticleLink,
    LinkLearning,
    LinkSource,
    PromptTemplate,
)
from apps.copilot.selectors import policy_effective
from apps.tickets.models import Ticket
from apps.triage.models import ClassifierVersion, Intent
from tests.copilot.conftest import DEMO, INTENTS, _training_rows

pytestmark = pytest.mark.django_db


def _demo_files(folder: Path) -> tuple[Path, Path]:
    intents = folder / "intents.csv"
    with intents.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "description", "handoff_policy", "articles"])
        for name, (policy, article) in INTENTS.items():
            writer.writerow([name, f"about {name}", policy, article])
        writer.writerow(["gift_card", "gift cards", "auto", "billing/not-imported.md"])
    train = folder / "train.csv"
    with train.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(_training_rows())
    return intents, train


@pytest.mark.slow
def test_demo_setup_creates_intents_links_classifier_and_prompt_once(tiny_kb, tmp_path):
    # given
    intents, train = _demo_files(tmp_path)
    calibration = tmp_path / "calibration.json"
    calibration.write_text(
        json.dumps(
            {
                "weights": {"method": "logistic", "feature_names": [], "weights": [], "bias": 0},
                "auto_send_threshold": 0.8,
            }
        )
    )
    IntentArticleLink.objects.all().delete()
    out = io.StringIO()
    arguments = ["--intents", intents, "--train", train, "--calibration", calibration]
    # when: twice
    call_command("copilot_demo_setup", *arguments, stdout=out)
    call_command("copilot_demo_setup", *arguments, stdout=out)
    # then
    assert Intent.objects.get(name="unauthorized_charge").handoff_policy == "always_human"
    assert Intent.objects.get(name="goodwill_request").handoff_policy == "review"
    assert IntentArticleLink.objects.filter(source=LinkSource.ADMIN).count() == 5
    assert LinkLearning.objects.count() == 1  # learned once, for the classifier and the KB
    assert ClassifierVersion.objects.filter(is_active=True).count() == 1
    assert ClassifierVersion.objects.count() == 1
    assert PromptTemplate.objects.filter(is_active=True).count() == 1
    assert Calibration.objects.get(is_active=True).auto_send_threshold == 0.8
    assert policy_effective().auto_send_threshold == 0.8
    assert "billing/not-imported.md" in out.getvalue()


def test_calibrate_fits_on_half_and_reports_the_held_out_half(copilot_ready, tmp_path):
    # given: a small gold set, half answerable in the KB, half to hand off
    gold = tmp_path / "gold.tsv"
    password, refund, tracking = (
        "account/reset-password.md",
        "returns/refund-timing.md",
        "shipping/tracking.md",
    )
    rows = [
        ("I forgot my password and cannot get back in", "reset_password", password, ""),
        ("the password reset link never shows up in my inbox", "reset_password", password, ""),
        ("how do I set a new password, mine stopped working", "reset_password", password, ""),
        ("when will I get my money back for the return", "refund_status", refund, ""),
        ("you got my return a week ago, where is the refund", "refund_status", refund, ""),
        ("how long does a refund take once you have the parcel", "refund_status", refund, ""),
        ("my tracking link shows nothing yet", "track_order", tracking, ""),
        ("where can I follow my parcel", "track_order", tracking, ""),
        ("what is the opening time of your shop on sunday", "", "", "no_answer"),
        ("do you sell car tyres for a truck", "", "", "out_of_scope"),
        ("is there a student discount", "", "", "no_answer"),
        ("can you recommend a good film", "", "", "out_of_scope"),
    ]  # fmt: skip
    gold.write_text(
        "question\tintent\texpected_article\tnote\n"
        + "".join("\t".join(row) + "\n" for row in rows)
    )
    tickets_before = Ticket.objects.count()
    out = io.StringIO()
    # when
    call_command("copilot_calibrate", str(gold), "--output", str(tmp_path / "c.json"), stdout=out)
    # then: stored and active, nothing sent, no ticket touched, figures printed
    calibration = Calibration.objects.get(is_active=True)
    assert calibration.weights["method"] == "logistic"
    assert set(calibration.metrics) >= {"fit", "held_out", "expected_calibration_error"}
    figures = calibration.metrics
    assert (figures["fit"]["questions"], figures["held_out"]["questions"]) == (7, 5)
    assert 0 < calibration.auto_send_threshold <= 1
    assert Ticket.objects.count() == tickets_before
    assert not Draft.objects.exists()
    printed = out.getvalue()
    assert "held-out: auto-sent" in printed and "calibration v1 stored and active" in printed
    assert json.loads((tmp_path / "c.json").read_text())["auto_send_threshold"] == (
        calibration.auto_send_threshold
    )


def test_calibrate_refuses_a_missing_file():
    with pytest.raises(Exception, match="is not a file"):
        call_command("copilot_calibrate", str(DEMO / "nope.tsv"))
