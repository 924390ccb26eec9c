"""The calibration refitted from live outcomes: only drafts someone judged count, too few
labels refit nothing, and the new version goes live through the regression gate."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from apps.copilot.models import Calibration, DraftStatus
from apps.copilot.services import pipeline_run
from apps.evaluation.models import GateDecision
from apps.evaluation.recalibration import live_labels
from apps.feedback.drafts import draft_reject_recorded, draft_send_recorded
from apps.feedback.services import reply_rate
from apps.tickets.models import Message
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.slow
RIGHT = "I forgot my password and the reset email never came"
WRONG = "When will my refund arrive?"  # answerable; the agents judge its drafts wrong


def _drafted(question: str):  # type: ignore[no-untyped-def]
    _, message = customer_ticket(question)
    return pipeline_run(message_id=message.pk)


def test_judged_live_drafts_refit_the_calibration_through_the_gate(
    copilot_ready, django_user_model, settings
):
    settings.CALIBRATION_REFIT_MIN_EACH = 5
    agent = django_user_model.objects.create_user("agent", password="pw-refit-1")
    # an auto-sent reply the customer disliked: a wrong one
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.0
    disliked = _drafted(RIGHT)
    assert disliked.status == DraftStatus.AUTO_SENT
    reply_rate(message=Message.objects.get(pk=disliked.sent_message_id), value="down")
    assert [label for _, label in live_labels(since=disliked.created_at)] == [False]
    # drafts held back for low confidence, which agents then judged
    settings.COPILOT_AUTO_SEND_THRESHOLD = 1.0
    for _ in range(4):
        draft_send_recorded(draft=_drafted(RIGHT), user=agent)  # sent as drafted: right
    unjudged = _drafted(RIGHT)  # nobody acted on it: no label
    assert unjudged.status == DraftStatus.PENDING
    # too few of each kind: nothing refitted, and the command says why
    with pytest.raises(CommandError, match="at least 5 of each"):
        call_command("eval_recalibrate")
    assert not Calibration.objects.exists()
    for _ in range(5):
        draft_reject_recorded(draft=_drafted(WRONG), user=agent, reason="wrong answer")
    draft_send_recorded(draft=_drafted(RIGHT), user=agent)
    labels = live_labels(since=disliked.created_at)
    assert sorted(label for _, label in labels) == [False] * 6 + [True] * 5
    # when: the refit runs
    call_command("eval_recalibrate")
    # then: a new version from the live labels, activated through the gate
    calibration = Calibration.objects.get(is_active=True)
    assert calibration.gold_set.startswith("live outcomes")
    assert calibration.metrics["labelled_drafts"] == 11 and calibration.metrics["right"] == 5
    assert GateDecision.objects.filter(kind="calibration", version=calibration.version).exists()
    # the next draft is scored by it
    assert _drafted(RIGHT).calibration_version == calibration.version
