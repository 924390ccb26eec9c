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


def test_collect_flags_the_auto_sends_in_the_band_the_spot_checks_and_guard_verdicts_once(
    settings,
):
    # given: threshold 0.9, a band of 0.01, every other auto-send spot-checked
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.9
    settings.FEEDBACK_LOW_MARGIN = 0.01
    settings.FEEDBACK_SPOT_CHECK_SHARE = 0.0
    auto = dict(decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="")
    in_band = draft_create(conversation_create(), confidence=0.905, **auto)
    above_band = draft_create(conversation_create(), confidence=0.93, **auto)
    guarded = draft_create(
        conversation_create(), validation={"foreign_links": ["https://evil.example"]}
    )
    # when
    first = flagged_drafts_collect()
    second = flagged_drafts_collect()
    # then: only the one most likely wrong, not every auto-send below 0.99
    assert (first, second) == (2, 0)
    flags = {(f.reason, f.draft_id) for f in FlaggedReply.objects.all()}
    assert flags == {(FlagReason.LOW_MARGIN, in_band.pk), (FlagReason.GUARD_VERDICT, guarded.pk)}
    assert above_band.pk not in {draft_id for _, draft_id in flags}
    low = FlaggedReply.objects.get(reason=FlagReason.LOW_MARGIN)
    assert "about one reply in 11 this sure is wrong" in low.detail


def test_a_stated_share_of_the_other_auto_sends_is_spot_checked_the_same_ones_every_run(
    settings,
):
    # given: 200 confident auto-sends and a 10% spot check
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.9
    settings.FEEDBACK_SPOT_CHECK_SHARE = 0.1
    auto = dict(decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="")
    ticket = conversation_create()
    drafts = [
        draft_create(ticket, confidence=0.99, generation=n + 2, is_current=False, **auto)
        for n in range(200)
    ]
    # when
    created = flagged_drafts_collect()
    # then: about 10% of them, each once, said to be a spot check
    spot = FlaggedReply.objects.filter(reason=FlagReason.SPOT_CHECK)
    assert 8 <= created == spot.count() <= 35
    assert flagged_drafts_collect() == 0
    assert all("spot check (10% of auto-sent replies)" in f.detail for f in spot)
    assert {f.draft_id for f in spot} <= {d.pk for d in drafts}


def test_each_kind_of_flag_can_be_switched_off(settings, agent):
    # given: the admin's policy turns off low-margin flags and rejections' flags
    from apps.feedback.models import FlagPolicy

    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.9
    FlagPolicy.objects.create(low_margin=False, draft_rejected=False, spot_check_share=0)
    auto = dict(decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="")
    draft_create(conversation_create(), confidence=0.9001, **auto)
    pending = draft_create(conversation_create())
    # when
    created = flagged_drafts_collect()
    draft_reject_recorded(draft=pending, user=agent, reason="wrong article")
    # then: the rejection is recorded, but nothing is flagged
    assert created == 0
    assert FlaggedReply.objects.count() == 0
    assert DraftAction.objects.get().reject_reason == "wrong article"


def test_the_flagged_view_puts_the_likeliest_harm_first(admin_client, settings, agent):
    # given: a rejected draft (nobody saw it), an auto-send in the band, a guard verdict on
    # an auto-sent reply
    settings.COPILOT_AUTO_SEND_THRESHOLD = 0.9
    settings.FEEDBACK_SPOT_CHECK_SHARE = 0.0
    auto = dict(decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="")
    draft_reject_recorded(draft=draft_create(conversation_create()), user=agent, reason="wrong")
    draft_create(conversation_create(), confidence=0.901, **auto)
    draft_create(
        conversation_create(),
        confidence=0.97,
        validation={"foreign_links": ["https://evil.example"]},
        **auto,
    )
    flagged_drafts_collect()
    # when
    page = admin_client.get("/admin/feedback/flaggedreply/").content.decode()
    # then: the guard verdict on a sent reply, then the likely-wrong auto-send, then the draft
    order = [page.index(label) for label in ("Guard verdict", "low margin", "Draft rejected")]
    assert order == sorted(order)


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
