import pytest
from django.test import Client

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.feedback.models import FlaggedReply, FlagReason, FlagStatus
from apps.feedback.services import flagged_reply_open
from apps.tickets.models import AuthorKind
from apps.tickets.services import Actor, message_add
from apps.triage.models import TrainingExample
from tests.inbox.factories import conversation_create
from tests.triage.factories import IntentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user_create(username="ada", password="pw-ada-123", role=Role.ADMIN))
    return client


@pytest.fixture
def flagged():  # type: ignore[no-untyped-def]
    ticket = conversation_create(body="<b>Where</b> is my parcel?", intent="shipping")
    reply = message_add(
        ticket=ticket,
        author_kind=AuthorKind.COPILOT,
        body="<img src=x onerror=alert(1)> It is lost.",
        actor=Actor.copilot(),
    )
    return flagged_reply_open(ticket=ticket, message=reply, reason=FlagReason.THUMBS_DOWN)


def test_flagged_list_shows_items_with_counts_per_filter(admin_client, flagged):
    # given
    flagged_reply_open(ticket=flagged.ticket, reason=FlagReason.GUARD_VERDICT)
    # when
    page = admin_client.get("/admin/feedback/flaggedreply/").content.decode()
    # then
    assert "Customer thumbs-down" in page
    assert "Open (2)" in page
    assert "Guard verdict (1)" in page


def test_flagged_item_shows_the_conversation_escaped_and_the_actions(admin_client, flagged):
    # when
    page = admin_client.get(f"/admin/feedback/flaggedreply/{flagged.pk}/change/").content.decode()
    # then
    assert "&lt;img src=x onerror=alert(1)&gt; It is lost." in page
    assert "&lt;b&gt;Where&lt;/b&gt; is my parcel?" in page
    assert "<img src=x" not in page
    assert "Mark reviewed" in page
    assert "Add knowledge-base note" in page


def test_agents_cannot_open_the_flagged_view(flagged):
    # given
    client = Client()
    client.force_login(user_create(username="ann", password="pw-ann-123", role=Role.AGENT))
    # when
    listing = client.get("/admin/feedback/flaggedreply/")
    action = client.post(f"/admin/feedback/flaggedreply/{flagged.pk}/act/review/")
    # then
    assert listing.status_code == 302
    assert action.status_code == 302
    flagged.refresh_from_db()
    assert flagged.status == FlagStatus.OPEN


def test_admin_marks_reviewed_and_a_second_click_says_it_is_done(admin_client, flagged):
    # when
    first = admin_client.post(
        f"/admin/feedback/flaggedreply/{flagged.pk}/act/review/", {"note": "ok"}, follow=True
    )
    second = admin_client.post(
        f"/admin/feedback/flaggedreply/{flagged.pk}/act/review/", follow=True
    )
    # then
    assert "Done." in first.content.decode()
    assert f"Flagged reply #{flagged.pk} was already reviewed" in second.content.decode()
    flagged.refresh_from_db()
    assert flagged.status == FlagStatus.REVIEWED
    assert [entry["detail"] for entry in flagged.actions_taken] == ["ok"]


def test_admin_adds_a_training_example_from_the_item(admin_client, flagged):
    # given
    IntentFactory(name="shipping")
    # when
    admin_client.post(
        f"/admin/feedback/flaggedreply/{flagged.pk}/act/training-example/",
        {"intent": "shipping"},
    )
    # then
    assert TrainingExample.objects.get().text == "<b>Where</b> is my parcel?"


def test_bulk_mark_reviewed_action(admin_client, flagged):
    # when
    admin_client.post(
        "/admin/feedback/flaggedreply/",
        {"action": "mark_reviewed", "_selected_action": [flagged.pk]},
    )
    # then
    assert FlaggedReply.objects.get().status == FlagStatus.REVIEWED


def test_unknown_action_is_refused_and_changes_nothing(admin_client, flagged):
    # when
    response = admin_client.post(
        f"/admin/feedback/flaggedreply/{flagged.pk}/act/delete-everything/", follow=True
    )
    # then
    assert "Unknown action" in response.content.decode()
    flagged.refresh_from_db()
    assert (flagged.status, flagged.actions_taken) == (FlagStatus.OPEN, [])


def test_flagged_draft_shows_the_draft_and_what_the_agent_sent_instead(admin_client, agent):
    # given
    from apps.feedback.drafts import draft_send_recorded
    from apps.tickets.models import TicketStatus
    from tests.feedback.factories import draft_create

    ticket = conversation_create(status=TicketStatus.NEEDS_REVIEW, intent="refund_status")
    draft = draft_create(ticket)
    draft_send_recorded(draft=draft, user=agent, body="Totally different <i>answer</i>.")
    flagged = FlaggedReply.objects.get(reason=FlagReason.HEAVILY_EDITED)
    # when
    page = admin_client.get(f"/admin/feedback/flaggedreply/{flagged.pk}/change/").content.decode()
    disabled = admin_client.post(
        f"/admin/feedback/flaggedreply/{flagged.pk}/act/disable-auto-send/", follow=True
    ).content.decode()
    # then
    assert "Hi! Refunds reach your card within 5 working days." in page
    assert "What the agent did: edited, then sent (ann)" in page
    assert "Totally different &lt;i&gt;answer&lt;/i&gt;." in page
    assert "Disable auto-send for this intent" in page
    assert "Auto-send is already off for this intent." in disabled
