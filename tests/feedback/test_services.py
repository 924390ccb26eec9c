import pytest

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.core.exceptions import ConflictError, NotFoundError, ValidationError
from apps.feedback.models import (
    FlaggedReply,
    FlagReason,
    FlagStatus,
    IntentCorrection,
    ReplyRating,
)
from apps.feedback.services import (
    REVIEW_NOTES_SOURCE,
    csat_record,
    flagged_reply_add_knowledge_note,
    flagged_reply_add_training_example,
    flagged_reply_open,
    flagged_reply_review,
    reply_rate,
    ticket_intent_correct,
)
from apps.knowledge.models import Article
from apps.tickets.models import AuthorKind, Message, Ticket
from apps.tickets.services import Actor, message_add
from apps.triage.models import ExampleSource, TrainingExample
from tests.inbox.factories import conversation_create
from tests.triage.factories import IntentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():  # type: ignore[no-untyped-def]
    return user_create(username="ada", password="pw-ada-123", role=Role.ADMIN)


def reply_on(ticket, body="Here is the answer.", author_kind=AuthorKind.COPILOT) -> Message:  # type: ignore[no-untyped-def]
    return message_add(ticket=ticket, author_kind=author_kind, body=body, actor=Actor.copilot())


def test_thumbs_down_flags_the_reply_once_with_the_intent_of_the_draft_that_was_sent():
    # given: an auto-sent reply drafted for "refund_status"; the ticket's intent changed since
    from apps.copilot.models import Decision, DraftStatus
    from tests.feedback.factories import draft_create

    ticket = conversation_create(intent="refund_status")
    reply = reply_on(ticket)
    draft = draft_create(
        ticket, decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="",
        intent="refund_status", sent_message_id=reply.pk,
    )  # fmt: skip
    Ticket.objects.filter(pk=ticket.pk).update(intent="track_order")
    # when
    reply_rate(message=reply, value="down")
    reply_rate(message=reply, value="down")
    # then: the flag and the rating name the draft and its intent, not the ticket's now
    flagged = FlaggedReply.objects.get()
    assert (flagged.reason, flagged.message_id, flagged.draft_id, flagged.intent) == (
        FlagReason.THUMBS_DOWN, reply.pk, draft.pk, "refund_status",
    )  # fmt: skip
    assert flagged.status == FlagStatus.OPEN and flagged.harm == 65
    rating = ReplyRating.objects.get()
    assert (rating.draft_id, rating.intent) == (draft.pk, "refund_status")


def test_a_rating_of_an_agent_s_own_reply_names_the_intent_of_the_message_it_answered():
    # given: triage read the customer's message as "track_order"; an agent answered
    ticket = conversation_create(intent="track_order")
    Message.objects.filter(ticket=ticket, author_kind=AuthorKind.CUSTOMER).update(
        intent="track_order"
    )
    reply = reply_on(ticket, author_kind=AuthorKind.AGENT)
    Ticket.objects.filter(pk=ticket.pk).update(intent="refund_status")
    # when
    rating = reply_rate(message=reply, value="up")
    csat = csat_record(ticket=ticket, score=2)
    # then
    assert (rating.draft_id, rating.intent) == (None, "track_order")
    assert (csat.message_id, csat.draft_id, csat.intent) == (reply.pk, None, "track_order")


def test_changing_to_thumbs_up_withdraws_an_unreviewed_flag_but_keeps_a_reviewed_one(
    admin_user,
):
    # given
    first = reply_on(conversation_create())
    second = reply_on(conversation_create())
    reply_rate(message=first, value="down")
    reply_rate(message=second, value="down")
    flagged_reply_review(flagged=FlaggedReply.objects.get(message=second), user=admin_user)
    # when
    rating = reply_rate(message=first, value="up")
    reply_rate(message=second, value="up")
    # then
    assert rating.value == "up"
    assert list(FlaggedReply.objects.values_list("message_id", "status")) == [
        (second.pk, FlagStatus.REVIEWED)
    ]


def test_customer_messages_cannot_be_rated():
    # given
    ticket = conversation_create()
    customer_message = Message.objects.get(ticket=ticket)
    # when / then
    with pytest.raises(ValidationError, match="only replies from the team can be rated"):
        reply_rate(message=customer_message, value="down")
    assert FlaggedReply.objects.count() == 0


@pytest.mark.parametrize("score", [0, 6, True, "3", 2.5])
def test_csat_outside_one_to_five_is_refused(score):
    # given
    ticket = conversation_create()
    # when / then
    with pytest.raises(ValidationError):
        csat_record(ticket=ticket, score=score)


def test_csat_latest_answer_counts():
    # given
    ticket = conversation_create()
    csat_record(ticket=ticket, score=2)
    # when
    rating = csat_record(ticket=ticket, score=5, comment="great")
    # then
    assert (rating.score, rating.comment) == (5, "great")


def test_agent_intent_correction_teaches_triage_and_updates_the_ticket(agent):
    # given
    IntentFactory(name="refund")
    IntentFactory(name="shipping")
    ticket = conversation_create(
        body="My parcel never arrived", intent="refund", intent_confidence=0.7
    )
    # when
    correction = ticket_intent_correct(ticket=ticket, intent="shipping", user=agent)
    # then
    ticket.refresh_from_db()
    assert (ticket.intent, ticket.intent_confidence) == ("shipping", None)
    example = TrainingExample.objects.get(pk=correction.training_example_id)
    assert (example.text, example.intent.name, example.source) == (
        "My parcel never arrived",
        "shipping",
        ExampleSource.AGENT_CORRECTION,
    )
    assert (correction.from_intent, correction.to_intent, correction.corrected_by) == (
        "refund",
        "shipping",
        agent,
    )


def test_correction_to_an_unknown_intent_changes_nothing(agent):
    # given
    ticket = conversation_create(intent="refund")
    # when / then
    with pytest.raises(NotFoundError):
        ticket_intent_correct(ticket=ticket, intent="nonsense", user=agent)
    ticket.refresh_from_db()
    assert ticket.intent == "refund"
    assert (IntentCorrection.objects.count(), TrainingExample.objects.count()) == (0, 0)


def test_reviewing_twice_is_a_conflict(admin_user):
    # given
    ticket = conversation_create()
    flagged = flagged_reply_open(ticket=ticket, reason=FlagReason.GUARD_VERDICT, detail="x")
    flagged_reply_review(flagged=flagged, user=admin_user, note="fine")
    # when / then
    with pytest.raises(ConflictError):
        flagged_reply_review(flagged=flagged, user=admin_user)
    flagged.refresh_from_db()
    assert [entry["action"] for entry in flagged.actions_taken] == ["marked_reviewed"]
    assert flagged.reviewed_by == admin_user


def test_admin_adds_a_training_example_from_a_flag(admin_user):
    # given
    IntentFactory(name="shipping")
    ticket = conversation_create(body="Where is my parcel?")
    flagged = flagged_reply_open(
        ticket=ticket, reason=FlagReason.THUMBS_DOWN, message=reply_on(ticket)
    )
    # when
    flagged_reply_add_training_example(flagged=flagged, user=admin_user, intent="shipping")
    # then
    example = TrainingExample.objects.get()
    assert (example.text, example.intent.name, example.source) == (
        "Where is my parcel?",
        "shipping",
        ExampleSource.ADMIN,
    )
    flagged.refresh_from_db()
    assert [entry["action"] for entry in flagged.actions_taken] == ["training_example_added"]


@pytest.mark.slow
def test_admin_adds_the_correct_answer_as_a_knowledge_note(admin_user):
    # given
    ticket = conversation_create(body="Do you gift wrap?")
    flagged = flagged_reply_open(
        ticket=ticket, reason=FlagReason.THUMBS_DOWN, message=reply_on(ticket)
    )
    # when
    flagged_reply_add_knowledge_note(
        flagged=flagged,
        user=admin_user,
        title="Gift wrapping",
        body="We gift wrap any order for 3 euros; choose it at checkout.",
        visibility="public",
    )
    # then
    article = Article.objects.get(source__name=REVIEW_NOTES_SOURCE)
    assert (article.external_id, article.title) == (f"flagged-reply-{flagged.pk}", "Gift wrapping")
    assert "3 euros" in article.body
    assert article.chunks.count() >= 1


def test_knowledge_note_without_an_answer_is_refused(admin_user):
    # given
    ticket = conversation_create()
    flagged = flagged_reply_open(ticket=ticket, reason=FlagReason.GUARD_VERDICT)
    # when / then
    with pytest.raises(ValidationError, match="needs the correct answer"):
        flagged_reply_add_knowledge_note(
            flagged=flagged, user=admin_user, title="T", body="  ", visibility="public"
        )
    assert Article.objects.count() == 0
