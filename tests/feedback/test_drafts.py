import pytest

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.copilot.models import CopilotPolicy, Decision, DraftStatus
from apps.copilot.selectors import policy_effective
from apps.core.exceptions import ConflictError, ValidationError
from apps.feedback.drafts import (
    draft_reject_recorded,
    draft_send_recorded,
    edit_distance,
    flagged_drafts_collect,
    flagged_reply_disable_auto_send,
)
from apps.feedback.models import DraftAction, FlaggedReply, FlagReason
from apps.tickets.models import TicketStatus
from tests.feedback.factories import draft_create
from tests.inbox.factories import conversation_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("", "", (0, 0.0, "char")),
        ("kitten", "sitting", (3, 3 / 7, "char")),
        ("same", "same", (0, 0.0, "char")),
        ("abc", "", (3, 1.0, "char")),
    ],
)
def test_edit_distance(first, second, expected):
    assert edit_distance(first, second) == expected


def test_edit_distance_of_very_long_texts_counts_words():
    # given
    long_text = "word " * 3000
    # when
    distance, ratio, unit = edit_distance(long_text, long_text + "extra")
    # then
    assert (distance, unit) == (1, "word")
    assert ratio == pytest.approx(1 / 3001)


def test_sending_twice_is_a_conflict_and_records_one_action(agent):
    # given
    ticket = conversation_create(status=TicketStatus.NEEDS_REVIEW)
    draft = draft_create(ticket)
    draft_send_recorded(draft=draft, user=agent)
    # when / then
    with pytest.raises(ConflictError):
        draft_send_recorded(draft=draft, user=agent, body="again")
    assert DraftAction.objects.count() == 1


def test_rejection_without_a_reason_is_refused_and_changes_nothing(agent):
    # given
    ticket = conversation_create(status=TicketStatus.NEEDS_REVIEW)
    draft = draft_create(ticket)
    # when / then
    with pytest.raises(ValidationError):
        draft_reject_recorded(draft=draft, user=agent, reason="   ")
    draft.refresh_from_db()
    assert draft.status == DraftStatus.PENDING
    assert (DraftAction.objects.count(), FlaggedReply.objects.count()) == (0, 0)


def test_collect_flags_low_margin_auto_sends_and_guard_verdicts_once(settings):
    # given: threshold 0.9, margin 0.05
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.9
    settings.FEEDBACK_LOW_MARGIN = 0.05
    ticket = conversation_create()
    auto = dict(decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="")
    just_over = draft_create(ticket, confidence=0.91, **auto)
    other = conversation_create()
    comfortable = draft_create(other, confidence=0.99, **auto)
    third = conversation_create()
    guarded = draft_create(third, validation={"foreign_links": ["https://evil.example"]})
    # when
    first = flagged_drafts_collect()
    second = flagged_drafts_collect()
    # then
    assert (first, second) == (2, 0)
    flags = {(f.reason, f.draft_id) for f in FlaggedReply.objects.all()}
    assert flags == {
        (FlagReason.LOW_MARGIN, just_over.pk),
        (FlagReason.GUARD_VERDICT, guarded.pk),
    }
    assert comfortable.pk not in {draft_id for _, draft_id in flags}


def test_admin_disables_auto_send_for_the_flag_intent():
    # given
    admin = user_create(username="ada", password="pw-ada-123", role=Role.ADMIN)
    ticket = conversation_create(intent="refund_status")
    draft = draft_create(ticket)
    flagged = FlaggedReply.objects.create(
        ticket=ticket, draft=draft, reason=FlagReason.LOW_MARGIN, intent="refund_status"
    )
    CopilotPolicy.objects.create(intent_overrides={"other": {"auto_send": False}})
    # when
    flagged_reply_disable_auto_send(flagged=flagged, user=admin)
    # then
    policy = policy_effective()
    assert policy.auto_send_allowed("refund_status") is False
    assert policy.auto_send_allowed("other") is False
    assert policy.auto_send_allowed("shipping") is True
    with pytest.raises(ConflictError, match="already off"):
        flagged_reply_disable_auto_send(flagged=flagged, user=admin)
