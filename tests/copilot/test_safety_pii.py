"""Personal data never reaches a model provider; the reply comes back re-personalised.

The model is the fake OpenAI server in its gullible mode: it repeats whatever the customer
wrote, placeholders included, so what it received is exactly what it echoes.
"""

from __future__ import annotations

import json

import pytest

from apps.copilot.models import ReplyCacheEntry
from apps.copilot.services import pipeline_run
from apps.llm.models import LLMCall
from apps.tickets.models import Channel
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

pytestmark = pytest.mark.slow

MESSAGE = (
    "I forgot my password and the reset email never arrives. I'm Maria Gonzalez, card "
    "4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, phone +44 20 7946 0958, email "
    "maria.g@example.com, SSN 536-22-8190, I live at 221B Baker Street. Order #884213."
)
PERSONAL = [
    "Maria Gonzalez", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "7946 0958",
    "maria.g@example.com", "536-22-8190", "221B Baker Street",
]  # fmt: skip


def _sent_to_model(fake) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(fake.requests)


@pytest.mark.parametrize("channel", [Channel.WIDGET, Channel.EMAIL])
def test_no_personal_data_reaches_the_model_and_the_reply_is_re_personalised(
    copilot_ready, fake_openai, channel
):
    # given: a gullible model that repeats what it reads
    fake_openai.reset(default=Reply.gullible())
    _, message = customer_ticket(MESSAGE, channel=channel)
    # when
    draft = pipeline_run(message_id=message.id)
    # then: the provider saw placeholders, never the values
    sent = _sent_to_model(fake_openai)
    assert fake_openai.hits == 1
    assert [value for value in PERSONAL if value in sent] == []
    assert "CREDIT_CARD_1" in sent and "PERSON_1" in sent
    assert "#884213" in sent  # an order number is not personal data
    # and the customer's own data is back in the reply an agent or customer reads
    for value in PERSONAL:
        assert value in draft.body
    assert "CREDIT_CARD_1" not in draft.body
    # and the call log says what was done, without the values
    call = LLMCall.objects.get(id=draft.llm_call_ids[0])
    assert call.redaction["pseudonymised"] is True
    assert call.redaction["replaced"]["CREDIT_CARD"] == 1
    assert "4111" not in json.dumps(call.redaction)
    # and a personalised reply is never cached for the next customer
    assert not ReplyCacheEntry.objects.filter(reply__reply__contains="Gonzalez").exists()


def test_a_question_carrying_personal_data_is_not_cached(copilot_ready, fake_openai):
    # given: a model that answers without repeating anything personal
    reply = "If you have forgotten your password, you can set a new one yourself."
    fake_openai.reset(
        default=Reply.ok(json.dumps({"reply": reply, "citations": ["P1"], "answerable": True}))
    )
    _, first = customer_ticket(
        "I forgot my password, my email is maria.g@example.com", channel=Channel.EMAIL
    )
    _, second = customer_ticket("I forgot my password and cannot log in", channel=Channel.EMAIL)
    # when
    pipeline_run(message_id=first.id)
    pipeline_run(message_id=second.id)
    # then: only the question without personal data was stored
    questions = list(ReplyCacheEntry.objects.values_list("question", flat=True))
    assert questions and all("maria" not in q for q in questions)


def test_the_local_drafter_reads_the_original_and_the_log_says_so(copilot_ready):
    # given: the offline drafter only (nothing leaves the machine)
    _, message = customer_ticket(MESSAGE, channel=Channel.EMAIL)
    # when
    pipeline_run(message_id=message.id)
    # then
    call = LLMCall.objects.filter(message_id=message.id, purpose="draft").get()
    assert call.redaction == {
        "pseudonymised": False,
        "why": "local drafter: nothing leaves the machine",
    }


def test_the_audit_keeps_the_redacted_prompt_and_answer_and_exports_json_lines(
    copilot_ready, fake_openai
):
    import io

    from django.core.management import call_command

    # given: a drafted message that carried a card number
    fake_openai.reset(default=Reply.gullible())
    _, message = customer_ticket(MESSAGE, channel=Channel.EMAIL)
    draft = pipeline_run(message_id=message.id)
    # then: the call row holds what was sent and received, with placeholders only
    call = LLMCall.objects.get(id=draft.llm_call_ids[0])
    stored = json.dumps(call.request_messages) + call.response_text
    assert "<CREDIT_CARD_1>" in stored and "4111" not in stored
    # and the export has the draft, its decision, guard verdicts and the call
    out = io.StringIO()
    call_command("audit_export", stdout=out)
    line = json.loads(out.getvalue().splitlines()[-1])
    assert (line["draft_id"], line["decision"], line["reason"]) == (
        draft.id,
        draft.decision,
        draft.reason,
    )
    assert line["guard"]["injection"]["suspected"] is False
    assert line["model_calls"][0]["redaction"]["pseudonymised"] is True
    # the model calls' text is the pseudonymised text (the draft's own fields quote the reply
    # the customer reads, which carries their data back)
    assert "4111" not in json.dumps(line["model_calls"])


def test_the_audit_export_says_who_acted_on_a_draft_and_what_the_admin_changed(
    copilot_ready, fake_openai, django_user_model, client
):
    import io

    from django.core.management import call_command

    from apps.feedback.drafts import draft_send_recorded
    from apps.tickets.models import Ticket
    from apps.tickets.services import Actor, ticket_resolve

    # given: a draft an agent edited and sent, then an admin change
    fake_openai.reset(default=Reply.gullible())
    ticket, message = customer_ticket("Where is my parcel? It is late.", channel=Channel.EMAIL)
    draft = pipeline_run(message_id=message.id)
    lead = django_user_model.objects.create_superuser("lead", "lead@example.com", "pw-audit-1")
    draft_send_recorded(draft=draft, user=lead, body="Your parcel left our depot today.")
    ticket_resolve(ticket=Ticket.objects.get(pk=ticket.pk), actor=Actor.for_user(lead))
    client.force_login(lead)
    changed = client.post(
        f"/admin/tickets/customer/{ticket.customer_id}/change/",
        {
            "name": "Ada L.",
            "email": "ada@example.com",
            "external_id": "",
            "identities-TOTAL_FORMS": "0",
            "identities-INITIAL_FORMS": "0",
        },
    )
    assert changed.status_code == 302
    # when
    out = io.StringIO()
    call_command("audit_export", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    # then: the draft's line says who sent it and how the ticket moved afterwards
    (line,) = [item for item in lines if item.get("draft_id") == draft.id]
    assert line["afterwards"]["acted_by"] == "lead"
    assert line["afterwards"]["status"] == "sent"
    moves = [(e["actor"], e["to"]) for e in line["afterwards"]["ticket_events"]]
    assert moves[0][0] == "copilot" and moves[-1] == (f"agent:{lead.pk}", "resolved")
    # and the admin's change is a line of its own
    (admin_change,) = [item for item in lines if item["kind"] == "admin_change"]
    assert (admin_change["user"], admin_change["object_type"], admin_change["action"]) == (
        "lead",
        "customer",
        "changed",
    )
    assert "Name" in admin_change["change"]


def test_a_reply_to_a_prompt_without_personal_data_is_cached_without_reading_it_again(
    copilot_ready, fake_openai, monkeypatch
):
    from apps.copilot.pipeline import cache

    # given: a model that writes a name it was never shown
    reply = "Hello, this is Sam from the support team: you can reset your password yourself."
    fake_openai.reset(
        default=Reply.ok(json.dumps({"reply": reply, "citations": ["P1"], "answerable": True}))
    )
    read: list[str] = []
    real = cache.pii_find

    def recorded(text: str):  # type: ignore[no-untyped-def]
        read.append(text)
        return real(text)

    monkeypatch.setattr(cache, "pii_find", recorded)
    _, clean = customer_ticket("I forgot my password and cannot log in", channel=Channel.EMAIL)
    _, personal = customer_ticket(
        "I'm Maria Gonzalez and I forgot my password", channel=Channel.EMAIL
    )
    # when
    pipeline_run(message_id=clean.id)
    pipeline_run(message_id=personal.id)
    # then: the clean question's reply was stored without spaCy reading it; the question
    # carrying a name was read and refused (its reply was never a candidate)
    assert reply not in read
    assert ReplyCacheEntry.objects.filter(question__startswith="I forgot my password").exists()
    assert not ReplyCacheEntry.objects.filter(question__contains="Gonzalez").exists()
