"""The copilot pipeline in-process: every decision with its reason, and what it does to
the ticket. The LLM is the offline drafter (local/extractive) or a fake OpenAI server."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest

from apps.copilot.models import Decision, Draft, DraftStatus, HandoffReason
from apps.copilot.services import pipeline_fail, pipeline_run, policy_auto_send_disable
from apps.core.exceptions import ConflictError
from apps.llm.models import LLMCall
from apps.tickets.models import AuthorKind, Channel, Message, PipelineStatus, TicketStatus
from apps.tickets.services import message_pipeline_advance
from tests.conftest import collected
from tests.copilot.conftest import customer_ticket
from tests.llm.factories import LLMCallFactory
from tests.llm.fake_openai import Reply

pytestmark = pytest.mark.django_db

PASSWORD_QUESTION = "I forgot my password and the reset email never arrives"


def test_an_answerable_question_is_auto_sent_citing_the_right_article(copilot_ready):
    # given
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    message.refresh_from_db()
    reply = ticket.messages.get(author_kind=AuthorKind.COPILOT)
    assert (draft.decision, draft.reason, draft.status) == ("auto_sent", "", "auto_sent")
    assert draft.citations[0]["external_id"] == "account/reset-password.md"
    assert draft.sent_message_id == reply.id
    assert reply.body == draft.body
    assert "password" in draft.body
    assert ticket.status == TicketStatus.AWAITING_CUSTOMER
    assert (ticket.intent, message.intent) == ("reset_password", "reset_password")
    assert message.pipeline_status == PipelineStatus.DONE
    assert draft.model == "local/extractive"
    assert draft.prompt.version == 1
    # the first message after the classifier's activation learns the intent→article links
    assert set(draft.stage_timings) == {
        "context", "guard", "triage", "learn_links", "retrieve", "guard_passages", "route",
        "cache", "draft", "validate",
        "confidence", "decide", "total",
    }  # fmt: skip
    assert draft.validation["grounded"] is True
    assert draft.llm_call_ids == [LLMCall.objects.get(message_id=message.id).id]


def test_an_intent_with_auto_send_disabled_waits_for_an_agent(copilot_ready):
    # given
    policy_auto_send_disable(intent="reset_password")
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert (draft.decision, draft.status) == ("needs_review", "pending")
    assert draft.reason != ""
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()
    with pytest.raises(ConflictError, match="already off for 'reset_password'"):
        policy_auto_send_disable(intent="reset_password")


def test_the_kill_switch_stops_every_auto_send_and_resuming_allows_it_again(copilot_ready):
    # given: auto-sending paused by the command an operator runs
    from django.core.management import call_command

    out = StringIO()
    call_command("copilot_pause", stdout=out)
    assert out.getvalue().strip() == "auto-sending paused"
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when: a question it would send on its own arrives
    paused = pipeline_run(message_id=message.id)
    # then: drafted for an agent, with the reason, nothing sent
    assert (paused.decision, paused.reason, paused.status) == (
        Decision.NEEDS_REVIEW,
        HandoffReason.AUTO_SEND_PAUSED,
        DraftStatus.PENDING,
    )
    assert "auto-sending is paused" in paused.reason_detail
    assert paused.body
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()
    # when: resumed, the same question on another ticket
    out = StringIO()
    call_command("copilot_resume", stdout=out)
    assert out.getvalue().strip() == "auto-sending resumed"
    _, again = customer_ticket(PASSWORD_QUESTION)
    resumed = pipeline_run(message_id=again.id)
    # then
    assert resumed.decision == Decision.AUTO_SENT


def test_a_review_intent_is_drafted_and_waits_for_an_agent(copilot_ready):
    # given
    ticket, message = customer_ticket(
        "My parcel arrived two weeks late and that is the second time. I think I deserve "
        "some kind of compensation or voucher for this."
    )
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert draft.intent == "goodwill_request"
    assert (draft.decision, draft.reason, draft.status) == (
        "needs_review",
        "review_intent",
        "pending",
    )
    assert draft.body
    assert ticket.status == TicketStatus.NEEDS_REVIEW
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "There is a payment on my card from you that I never made, someone used my card",
            HandoffReason.ALWAYS_HUMAN_INTENT,
        ),
        (
            "I want to talk to a real person, not a bot. Where is my refund?",
            HandoffReason.CUSTOMER_ASKED_HUMAN,
        ),
        (
            "Ich habe mein Passwort vergessen und bekomme keine E-Mail zum Zurücksetzen",
            HandoffReason.LANGUAGE_UNSUPPORTED,
        ),
    ],
)
def test_a_message_that_needs_a_human_is_handed_off_before_drafting(copilot_ready, text, reason):
    # given
    ticket, message = customer_ticket(text)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason, draft.status) == ("handed_off", reason, "not_drafted")
    assert draft.body == ""
    assert ticket.status == TicketStatus.HANDED_OFF
    assert ticket.events.last().reason.startswith(HandoffReason(reason).label)
    assert not LLMCall.objects.filter(message_id=message.id).exists()


def test_an_out_of_scope_message_is_handed_off(copilot_ready):
    # given
    ticket, message = customer_ticket(
        "Can you write me a poem about the mountains in winter and the stars above them?"
    )
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    assert draft.decision == Decision.HANDED_OFF
    assert draft.reason in (
        HandoffReason.OUT_OF_SCOPE,
        HandoffReason.NO_ANSWER,
        HandoffReason.UNGROUNDED,
        HandoffReason.LOW_CONFIDENCE,
    )
    assert not Message.objects.filter(ticket=ticket, author_kind=AuthorKind.COPILOT).exists()


def test_an_empty_knowledge_base_hands_off_with_no_answer(active_classifier):
    # given: a classifier but no article
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason, draft.reason_detail) == (
        "handed_off",
        "no_answer",
        "the knowledge base is empty",
    )
    assert ticket.status == TicketStatus.HANDED_OFF


def test_without_a_classifier_a_draft_is_made_for_review(tiny_kb):
    # given: articles but no active classifier
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason) == ("needs_review", "unclassified")
    assert draft.body
    assert ticket.status == TicketStatus.NEEDS_REVIEW


def test_the_model_down_hands_off_with_model_unavailable_and_keeps_the_message(
    copilot_ready, fake_openai
):
    # given: every model answers 500
    fake_openai.reset(default=Reply.error(500))
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    message.refresh_from_db()
    assert (draft.decision, draft.reason, draft.status) == (
        "handed_off",
        "model_unavailable",
        "not_drafted",
    )
    assert draft.stage_timings["draft"] < 5000
    assert ticket.status == TicketStatus.HANDED_OFF
    assert message.pipeline_status == PipelineStatus.DONE
    assert Message.objects.filter(pk=message.pk, body=PASSWORD_QUESTION).exists()
    assert LLMCall.objects.get(message_id=message.id).status == LLMCall.Status.FAILED


def test_a_fake_openai_model_drafts_with_tokens_and_cost(copilot_ready, fake_openai):
    # given: the model answers from passage P1, to a visitor in the widget
    fake_openai.reset(
        default=Reply.ok(
            json.dumps(
                {
                    "reply": "If you have forgotten your password or it is no longer "
                    "accepted, you can set a new one yourself.",
                    "citations": ["P1"],
                    "answerable": True,
                }
            )
        )
    )
    _, message = customer_ticket(PASSWORD_QUESTION, channel=Channel.WIDGET)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    assert draft.model == "openai/gpt-4o-mini"
    assert draft.input_tokens > 0 and draft.output_tokens > 0
    assert draft.cost_usd > Decimal("0")
    assert draft.streamed is True
    assert draft.citations[0]["external_id"] == "account/reset-password.md"
    request = fake_openai.requests[0]
    assert "<customer_message>" in request["messages"][1]["content"]
    assert request["stream"] is True


def test_a_draft_nobody_watches_is_one_model_response_and_a_late_reader_gets_the_draft(
    copilot_ready, fake_openai
):
    # given: an email ticket with no reader of its draft stream
    from apps.copilot.streaming import stream_events

    reply = "If you have forgotten your password, you can set a new one yourself."
    fake_openai.reset(
        default=Reply.ok(json.dumps({"reply": reply, "citations": ["P1"], "answerable": True}))
    )
    ticket, message = customer_ticket(PASSWORD_QUESTION, channel=Channel.EMAIL)
    # when
    draft = pipeline_run(message_id=message.id)
    # then: the model was asked for one response, counted and priced like a streamed one
    assert "stream" not in fake_openai.requests[0]
    assert (draft.body, draft.streamed, draft.decision) == (reply, False, "auto_sent")
    assert draft.output_tokens > 0 and draft.cost_usd > Decimal("0")
    # and a reader who connects afterwards sees the run start and end, with no text
    events = collected(stream_events(ticket_id=ticket.id, timeout=2))
    assert [event["type"] for event in events] == ["start", "audience", "final"]
    assert events[-1]["draft_id"] == draft.id


def test_an_unanswerable_reply_is_handed_off_with_no_answer(copilot_ready, fake_openai):
    # given
    fake_openai.reset(default=Reply.ok('{"reply": "", "citations": [], "answerable": false}'))
    _, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    assert (draft.decision, draft.reason) == ("handed_off", "no_answer")


def test_an_invented_claim_is_handed_off_as_ungrounded(copilot_ready, fake_openai):
    # given: the model cites a passage but invents the content and a link
    fake_openai.reset(
        default=Reply.ok(
            json.dumps(
                {
                    "reply": "Call our hotline on 0800 123 456 and quote code ZEBRA for a "
                    "manual reset, see https://evil.example.com/reset",
                    "citations": ["P1"],
                    "answerable": True,
                }
            )
        )
    )
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    draft = pipeline_run(message_id=message.id)
    # then: the output guard names the link and the phone number no passage has
    assert (draft.decision, draft.reason) == ("handed_off", "unsafe_output")
    assert draft.validation["foreign_links"] == ["https://evil.example.com/reset"]
    assert {"kind": "link", "text": "https://evil.example.com/reset"} in draft.validation["unsafe"]
    assert {"kind": "contact", "text": "0800 123 456"} in draft.validation["unsafe"]
    assert "evil.example.com" in draft.reason_detail
    assert not Message.objects.filter(ticket=ticket, author_kind=AuthorKind.COPILOT).exists()


def test_a_spent_budget_hands_off_with_budget(copilot_ready, settings):
    # given: this ticket already spent its budget
    settings.LLM_BUDGET_TICKET_USD = 0.01
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    LLMCallFactory(ticket_id=ticket.id, cost_usd=Decimal("0.02"))
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason) == ("handed_off", "budget")
    assert ticket.status == TicketStatus.HANDED_OFF


def test_running_twice_gives_one_draft_and_one_reply(copilot_ready):
    # given
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    first = pipeline_run(message_id=message.id)
    second = pipeline_run(message_id=message.id)
    # then
    assert first.pk == second.pk
    assert Draft.objects.filter(message=message).count() == 1
    assert ticket.messages.filter(author_kind=AuthorKind.COPILOT).count() == 1
    assert LLMCall.objects.filter(message_id=message.id).count() == 1


def test_a_run_killed_after_the_model_answered_is_redone_into_exactly_one_draft(copilot_ready):
    # given: a run took the message and called the model, then died before saving
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    assert message_pipeline_advance(
        message_id=message.id,
        from_statuses=[PipelineStatus.UNSCHEDULED],
        to_status=PipelineStatus.PROCESSING,
    )
    LLMCallFactory(ticket_id=ticket.id, message_id=message.id)
    # when: the task is delivered again
    draft = pipeline_run(message_id=message.id)
    again = pipeline_run(message_id=message.id)
    # then
    message.refresh_from_db()
    assert draft is not None and again.pk == draft.pk
    assert Draft.objects.filter(message=message).count() == 1
    assert ticket.messages.filter(author_kind=AuthorKind.COPILOT).count() == 1
    assert message.pipeline_status == PipelineStatus.DONE


def test_a_message_superseded_by_a_newer_one_is_not_drafted(copilot_ready):
    # given: the customer wrote again before the pipeline ran for the first message
    from apps.tickets.services import Actor, message_add

    ticket, first = customer_ticket(PASSWORD_QUESTION)
    second = message_add(
        ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="hello?", actor=Actor.system()
    )
    # when
    draft = pipeline_run(message_id=first.id)
    # then
    first.refresh_from_db()
    assert draft is None
    assert first.pipeline_status == PipelineStatus.DONE
    assert f"newer customer message (#{second.id})" in first.pipeline_error
    assert not LLMCall.objects.filter(message_id=first.id).exists()


def test_a_terminal_failure_is_recorded_and_the_ticket_handed_off(copilot_ready):
    # given
    ticket, message = customer_ticket(PASSWORD_QUESTION)
    # when
    pipeline_fail(message_id=message.id, error="RuntimeError('boom')")
    pipeline_fail(message_id=message.id, error="again")
    # then
    ticket.refresh_from_db()
    message.refresh_from_db()
    draft = Draft.objects.get(message=message)
    assert (message.pipeline_status, message.pipeline_error) == ("failed", "RuntimeError('boom')")
    assert (draft.status, draft.decision, draft.reason) == (
        "failed",
        "handed_off",
        "pipeline_failed",
    )
    assert ticket.status == TicketStatus.HANDED_OFF
    # and the pipeline does not run a failed message again
    assert pipeline_run(message_id=message.id) == draft
    assert Draft.objects.get(message=message).status == DraftStatus.FAILED
