"""Streaming of drafts (Redis replay + SSE endpoint), the ticket API's draft, regenerate,
and the agent's actions (send, reject, take over)."""

from __future__ import annotations

import json

import pytest

from apps.accounts.models import Role, User
from apps.copilot.models import Draft, DraftStatus
from apps.copilot.selectors import draft_current_for_ticket, drafts_for_ticket
from apps.copilot.services import (
    draft_regenerate,
    draft_reject,
    draft_send,
    pipeline_fail,
    pipeline_run,
    ticket_assist_set,
    ticket_handback,
    ticket_takeover,
)
from apps.copilot.streaming import (
    customer_stream_events,
    stream_events,
    stream_listeners,
    stream_publish,
    stream_replay,
)
from apps.core.exceptions import ConflictError
from apps.tickets.models import AuthorKind, Channel, TicketStatus
from apps.tickets.services import Actor, message_add
from tests.conftest import collected
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

pytestmark = pytest.mark.django_db

QUESTION = "I forgot my password and the reset email never arrives"
REVIEW_QUESTION = (
    "My parcel arrived two weeks late and that is the second time. I think I deserve "
    "some kind of compensation or voucher for this."
)


@pytest.fixture
def agent(db) -> User:  # type: ignore[no-untyped-def]
    return User.objects.create_user(username="agent-1", password="x", role=Role.AGENT)


def _sse_events(response) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    text = b"".join(response).decode()
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def _reader_connected(ticket_id: int) -> tuple:  # type: ignore[type-arg]
    """A reader of the ticket's draft stream (an agent's inbox, an API client), connected:
    its thread and the events it will have received."""
    import threading

    from tests.conftest import wait_for

    seen: list = []
    reader = threading.Thread(
        target=lambda: seen.extend(collected(stream_events(ticket_id=ticket_id, timeout=10)))
    )
    reader.start()
    wait_for(lambda: stream_listeners(ticket_id=ticket_id) == 1, timeout=5)
    return reader, seen


def test_draft_tokens_are_replayed_in_order_ending_with_the_final_event(copilot_ready):
    # given: an API ticket whose draft stream has a reader
    ticket, message = customer_ticket(QUESTION)
    reader, seen = _reader_connected(ticket.id)
    # when
    draft = pipeline_run(message_id=message.id)
    reader.join(10)
    # then
    events = stream_replay(ticket_id=ticket.id)
    assert seen == events
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["start", "audience"] and kinds[-1] == "final"
    assert events[1]["customer"] is True
    assert set(kinds[2:-1]) == {"delta"}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert "".join(e["text"] for e in events if e["type"] == "delta") == draft.body
    assert events[-1]["draft_id"] == draft.id
    assert events[-1]["decision"] == "auto_sent"
    # a late reader gets the same events and stops at the final one
    assert collected(stream_events(ticket_id=ticket.id, timeout=2)) == events


def test_the_customer_watches_a_draft_on_course_to_be_sent_and_not_a_reviewed_one(
    copilot_ready,
):
    # given: two widget conversations
    sent_ticket, sent_message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    reviewed_ticket, reviewed_message = customer_ticket(REVIEW_QUESTION, channel=Channel.WIDGET)
    sent = pipeline_run(message_id=sent_message.id)
    pipeline_run(message_id=reviewed_message.id)
    # when
    sent_events = collected(customer_stream_events(ticket_id=sent_ticket.id, timeout=2))
    reviewed_events = collected(customer_stream_events(ticket_id=reviewed_ticket.id, timeout=2))
    # then: the sent reply arrives piece by piece, then as the message itself
    assert sent.decision == "auto_sent"
    deltas = [event["text"] for event in sent_events if event["type"] == "delta"]
    assert len(deltas) > 1
    # every complete word was shown as written; the last one arrives with the message
    assert "".join(deltas) == sent.body[: sent.body.rindex(" ") + 1]
    assert sent_events[0] == {"type": "start", "message_id": sent_message.id}
    assert sent_events[-1] == {"type": "message", "body": sent.body}
    assert {event["type"] for event in sent_events} == {"start", "delta", "message"}
    assert reviewed_events == [
        {"type": "start", "message_id": reviewed_message.id},
        {"type": "typing"},
        {"type": "needs_review"},
    ]
    # and the drafts record it for the audit
    reviewed = Draft.objects.get(ticket=reviewed_ticket)
    assert (sent.shown_while_drafting, reviewed.shown_while_drafting) == (True, False)


def _watched_run(fake_openai, reply: str) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """A question on course to be sent, answered by a model writing `reply`: the ticket, its
    draft and what the customer's widget was shown."""
    fake_openai.reset(
        default=Reply.ok(json.dumps({"reply": reply, "citations": ["P1"], "answerable": True}))
    )
    ticket, message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    draft = pipeline_run(message_id=message.id)
    return ticket, draft, collected(customer_stream_events(ticket_id=ticket.id, timeout=2))


def test_a_watched_draft_that_fails_validation_is_retracted_from_the_customer(
    copilot_ready, fake_openai
):
    # given: a model that invents its answer
    invented = "Call our hotline on 0800 123 456 and quote code ZEBRA for a manual reset."
    # when
    _, draft, events = _watched_run(fake_openai, invented)
    # then: the text was shown while written, then withdrawn, and a person takes over (the
    # invented hotline number is what the output guard found)
    assert (draft.decision, draft.reason) == ("handed_off", "unsafe_output")
    assert "".join(e["text"] for e in events if e["type"] == "delta") == invented.removesuffix(
        "reset."
    )
    assert events[-2:] == [{"type": "retract"}, {"type": "handed_off"}]
    assert draft.shown_while_drafting is True


def test_a_watched_draft_that_opens_with_a_link_records_that_the_customer_saw_none_of_it(
    copilot_ready, fake_openai
):
    # given: a model whose reply opens with a link
    reply = "https://evil.example/reset is where you reset your password today."
    # when
    ticket, draft, events = _watched_run(fake_openai, reply)
    # then: announced to the customer, but the live view stopped at the link: nothing shown
    raw = collected(stream_events(ticket_id=ticket.id, timeout=2))
    assert {"type": "audience", "customer": True} in [
        {key: event[key] for key in ("type", "customer") if key in event} for event in raw
    ]
    assert draft.decision == "handed_off"
    assert [event["type"] for event in events] == ["start", "typing", "handed_off"]
    assert draft.shown_while_drafting is False


def test_the_customer_never_watches_a_link_being_written_even_one_that_is_then_sent(
    copilot_ready,
):
    # given: a run on course to be sent, writing a phishing link then a knowledge-base link
    from apps.copilot.streaming import stream_publish

    ticket, message = customer_ticket(QUESTION)
    pieces = ["Reset it ", "at ht", "tps://evil.example/reset", " now. ", "See [Reset]", "(/kb)."]
    for event in (
        {"type": "start", "message_id": message.id},
        {"type": "audience", "customer": True},
        *({"type": "delta", "text": piece} for piece in pieces),
        {"type": "final", "decision": "handed_off", "reason": "ungrounded"},
    ):
        stream_publish(ticket_id=ticket.id, event=event)
    # when
    events = collected(customer_stream_events(ticket_id=ticket.id, timeout=2))
    # then: the words before the link were shown, then nothing, then withdrawn
    assert events == [
        {"type": "start", "message_id": message.id},
        {"type": "delta", "text": "Reset it "},
        {"type": "delta", "text": "at "},
        {"type": "retract"},
        {"type": "handed_off"},
    ]


@pytest.mark.parametrize(
    "word",
    [
        "https://evil.example",
        "(http://x.io)",
        "www.evil.example",
        "evil.com",
        "evil.co.uk/reset",
        "[here](/reset)",
        '<a href="/x">',
        "mailto:help@x.io",
        "javascript:alert(1)",
        "**evil.example**",
        "`evil.example`",
        "\u201cevil.example\u201d",
        "evil.example\u2026",
        "EVIL.EXAMPLE/RESET",
        "//evil.example/x",
        "10.0.0.1/reset",
        "http://10.0.0.1",
        "localhost:8000/reset",
        "root@localhost",
        "admin@evil.example",
        "xn--e1afmkfd.xn--p1ai/reset",
        "bank.\u0440\u0444/reset",
        "paypal.c\u043em",
        "evil\u200b.example/reset",
        "evil\u00ad.example",
        "evil\u3002example/reset",
        "evil\uff0eexample",
        "evil.\u200aexample/reset",
        "evil.\x1fexample/reset",
        "\u8a73\u3057\u304f\u306fevil.example\u3092\u3054\u89a7\u304f\u3060\u3055\u3044",
    ],
)
def test_link_like_words_stop_the_live_view(word):
    # given
    from apps.copilot.streaming import LiveText

    live = LiveText()
    # when
    shown = live.add(f"Go to {word} and then more text ")
    # then
    assert shown == "Go to "
    assert live.add("even later words ") == ""


@pytest.mark.parametrize(
    "text",
    [
        "It costs 3.99 a month, e.g. on Plus. ",
        "Wait 2-3 days, i.e. soon. ",
        "Export your data: go to Settings ",
        "Tel: +44 20 1234 5678 ",
        "Plus is \u20ac3.99/mo. and/or 24/7 help at 10:30 a.m. in the U.S. ",
        "Update to version 2.3.1 today. ",
    ],
)
def test_ordinary_words_with_dots_are_shown(text):
    # given
    from apps.copilot.streaming import LiveText

    # when / then
    assert LiveText().add(text) == text


def test_text_shown_by_a_run_that_died_is_withdrawn_by_the_next_run_and_the_failure(
    copilot_ready,
):
    # given: a customer watching the stream
    import threading
    import time

    from apps.copilot.streaming import stream_publish

    ticket, message = customer_ticket(QUESTION)
    seen: list = []
    reader = threading.Thread(
        target=lambda: seen.extend(
            collected(customer_stream_events(ticket_id=ticket.id, timeout=10))
        )
    )
    reader.start()
    time.sleep(0.5)  # subscribed
    # when: a run streams to them and dies, its retry starts over, then the pipeline gives up
    for event in (
        {"type": "start", "message_id": message.id},
        {"type": "audience", "customer": True},
        {"type": "delta", "text": "Half a rep"},
        {"type": "start", "message_id": message.id},
    ):
        stream_publish(ticket_id=ticket.id, event=event)
    pipeline_fail(message_id=message.id, error="worker lost")
    reader.join(15)
    # then: the dead run's text is withdrawn when the retry starts; the failure ends it
    assert seen == [
        {"type": "start", "message_id": message.id},
        {"type": "delta", "text": "Half a "},
        {"type": "retract"},
        {"type": "start", "message_id": message.id},
        {"type": "handed_off"},
    ]
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()


def test_the_sse_endpoint_serves_the_draft_events(copilot_ready, api_key_client, settings):
    # given: a deployment that streams every draft, watched or not
    settings.COPILOT_STREAM_UNWATCHED = True
    ticket, message = customer_ticket(QUESTION)
    draft = pipeline_run(message_id=message.id)
    # when
    response = api_key_client(("read",)).get(
        f"/api/v1/tickets/{ticket.id}/draft/stream", HTTP_ACCEPT="text/event-stream"
    )
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = _sse_events(response)
    assert events[0][0] == "start"
    assert events[-1] == ("final", {**events[-1][1], "draft_id": draft.id})
    assert "".join(data["text"] for kind, data in events if kind == "delta") == draft.body


def test_the_sse_endpoint_refuses_an_unknown_ticket_and_no_key(api_key_client, api_client):
    assert api_key_client().get("/api/v1/tickets/999999/draft/stream").status_code == 404
    assert api_client.get("/api/v1/tickets/1/draft/stream").status_code == 401


def test_the_ticket_api_shows_the_latest_draft(copilot_ready, api_key_client):
    # given
    ticket, message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    pipeline_run(message_id=message.id)
    # when
    body = api_key_client().get(f"/api/v1/tickets/{ticket.id}").json()
    # then
    draft = body["draft"]
    assert body["status"] == "awaiting_customer"
    assert (draft["decision"], draft["reason"], draft["status"]) == ("auto_sent", "", "auto_sent")
    assert draft["intent"] == "reset_password"
    assert draft["model"] == "local/extractive"
    assert draft["prompt_version"] == 1
    assert draft["shown_while_drafting"] is True
    assert 0 <= draft["confidence"] <= 1
    assert draft["citations"][0]["external_id"] == "account/reset-password.md"
    assert set(draft["citations"][0]) == {
        "passage_id", "external_id", "title", "url", "heading_path", "passage", "score",
        "similarity",
    }  # fmt: skip
    assert set(draft["stage_timings"]) >= {"triage", "retrieve", "draft", "total"}
    assert (draft["input_tokens"], draft["cost_usd"]) == (draft["input_tokens"], 0.0)


def test_a_ticket_without_a_draft_shows_null(api_key_client):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "hello"}, format="json").json()
    # when / then
    assert client.get(f"/api/v1/tickets/{created['id']}").json()["draft"] is None


def test_regenerate_answers_202_and_the_task_supersedes_the_draft_keeping_history(
    copilot_ready, api_key_client, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a drafted ticket, and the broker's publish recorded
    ticket, message = customer_ticket(REVIEW_QUESTION)
    first = pipeline_run(message_id=message.id)
    sent: list[dict] = []
    monkeypatch.setattr(
        "apps.copilot.services.drafts.current_app.send_task",
        lambda name, **options: sent.append({"name": name, **options}),
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api_key_client().post(f"/api/v1/tickets/{ticket.id}/draft/regenerate")
    # then: queued, nothing drafted in the request
    assert response.status_code == 202
    assert response.json() == {
        "ticket_id": ticket.id, "message_id": message.id, "status": "queued",
        "stream": f"/api/v1/tickets/{ticket.id}/draft/stream",
    }  # fmt: skip
    assert [(s["name"], s["kwargs"], s["queue"]) for s in sent] == [
        ("copilot.draft_regenerate", {"message_id": message.id, "actor_id": None}, "pipeline")
    ]
    assert Draft.objects.filter(ticket=ticket).count() == 1
    # when the worker runs the task
    new = draft_regenerate(**sent[0]["kwargs"])
    # then
    first.refresh_from_db()
    assert (new.generation, new.is_current, new.status) == (2, True, "pending")
    assert (first.is_current, first.status) == (False, DraftStatus.SUPERSEDED)
    assert draft_current_for_ticket(ticket_id=ticket.id).id == new.id
    assert [d.id for d in drafts_for_ticket(ticket_id=ticket.id)] == [new.id, first.id]
    events = stream_replay(ticket_id=ticket.id)
    assert (events[0]["type"], events[-1]["type"], events[-1]["draft_id"]) == (
        "start", "final", new.id,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_regenerate_says_503_when_the_broker_refuses_and_changes_nothing(
    copilot_ready, api_key_client, monkeypatch
):
    # (a transactional test: outside a transaction, as in production, the publish runs at
    # once inside the request, so its failure is the request's answer)
    # given
    ticket, message = customer_ticket(REVIEW_QUESTION)
    pipeline_run(message_id=message.id)

    def refuse(name: str, **options: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("apps.copilot.services.drafts.current_app.send_task", refuse)
    # when
    response = api_key_client().post(f"/api/v1/tickets/{ticket.id}/draft/regenerate")
    # then
    assert response.status_code == 503
    assert "could not be queued" in response.json()["error"]["message"]
    assert Draft.objects.filter(ticket=ticket).count() == 1


def test_a_model_call_inside_a_transaction_is_refused(copilot_ready):
    # given
    from django.db import transaction

    from apps.llm.exceptions import ModelCallRefused

    ticket, message = customer_ticket(QUESTION)
    # when / then: the pipeline's model call, run inside a transaction, is refused
    with (
        pytest.raises(ModelCallRefused, match="inside a database transaction"),
        transaction.atomic(),
    ):
        draft_regenerate(message_id=message.id, actor_id=None)
    assert not Draft.objects.filter(ticket=ticket).exists()


def test_regenerate_refuses_a_read_only_key(copilot_ready, api_key_client):
    ticket, message = customer_ticket(REVIEW_QUESTION)
    pipeline_run(message_id=message.id)
    response = api_key_client(("read",)).post(f"/api/v1/tickets/{ticket.id}/draft/regenerate")
    assert response.status_code == 403
    assert Draft.objects.filter(ticket=ticket).count() == 1


def test_an_agent_sends_an_edited_draft_once(copilot_ready, agent):
    # given
    ticket, message = customer_ticket(REVIEW_QUESTION)
    draft = pipeline_run(message_id=message.id)
    # when
    sent = draft_send(draft=draft, actor=agent, body="Sorry about that: here is a voucher.")
    # then
    ticket.refresh_from_db()
    reply = ticket.messages.get(author_kind=AuthorKind.AGENT)
    assert (sent.status, sent.acted_by_id, sent.sent_message_id) == ("sent", agent.id, reply.id)
    assert reply.body == "Sorry about that: here is a voucher."
    assert ticket.status == TicketStatus.AWAITING_CUSTOMER
    with pytest.raises(ConflictError):
        draft_send(draft=draft, actor=agent)
    assert ticket.messages.filter(author_kind=AuthorKind.AGENT).count() == 1


def test_a_rejected_draft_cannot_be_sent(copilot_ready, agent):
    # given
    ticket, message = customer_ticket(REVIEW_QUESTION)
    draft = pipeline_run(message_id=message.id)
    # when
    rejected = draft_reject(draft=draft, actor=agent, reason="wrong tone")
    # then
    assert rejected.status == DraftStatus.REJECTED
    assert "rejected: wrong tone" in rejected.reason_detail
    with pytest.raises(ConflictError):
        draft_send(draft=rejected, actor=agent)
    assert not ticket.messages.filter(author_kind=AuthorKind.AGENT).exists()


def test_a_taken_over_ticket_gets_drafts_for_the_agent_and_none_is_sent(copilot_ready, agent):
    # given: a question the copilot would auto-send, on a ticket an agent took over
    ticket, message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    ticket_takeover(ticket=ticket, actor=agent)
    # when
    draft = pipeline_run(message_id=message.id)
    # then: a draft waits for the agent; nothing went to the customer, who watched nothing
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason, draft.status) == (
        "handed_off", "agent_took_over", DraftStatus.PENDING,
    )  # fmt: skip
    assert "would have auto-sent it" in draft.reason_detail
    assert draft.body and draft.citations
    assert ticket.assignee_id == agent.id and ticket.status == TicketStatus.NEW
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()
    assert draft.shown_while_drafting is False
    watched = collected(customer_stream_events(ticket_id=ticket.id, timeout=2))
    assert [e["type"] for e in watched] == ["start", "typing", "handed_off"]
    # when handed back, the next customer message may be auto-sent again
    assert ticket_handback(ticket=ticket, actor=agent) is True
    follow_up = message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body="I forgot my password again, the reset email does not come",
        actor=Actor.for_customer(ticket.customer),
    )
    assert pipeline_run(message_id=follow_up.id).decision == "auto_sent"


def test_a_follow_up_on_a_handed_off_ticket_is_drafted_for_the_person(copilot_ready):
    # given: a ticket the copilot handed off (the customer asked for a person)
    ticket, message = customer_ticket("I want to talk to a human please")
    first = pipeline_run(message_id=message.id)
    ticket.refresh_from_db()
    assert (first.reason, ticket.status) == ("customer_asked_human", TicketStatus.HANDED_OFF)
    # when: the customer writes again while waiting
    follow_up = message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body=QUESTION,
        actor=Actor.for_customer(ticket.customer),
    )
    draft = pipeline_run(message_id=follow_up.id)
    # then: a draft for the agent, never sent, and the ticket stays with them
    ticket.refresh_from_db()
    assert (draft.decision, draft.reason, draft.status) == (
        "handed_off", "with_agent", DraftStatus.PENDING,
    )  # fmt: skip
    assert draft.citations[0]["external_id"] == "account/reset-password.md"
    assert ticket.status == TicketStatus.HANDED_OFF
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()


def test_an_agent_switches_drafts_off_for_a_ticket_and_on_again(copilot_ready, agent):
    # given
    ticket, message = customer_ticket(QUESTION)
    assert ticket_assist_set(ticket=ticket, actor=agent, enabled=False) is True
    assert ticket_assist_set(ticket=ticket, actor=agent, enabled=False) is False
    # when
    draft = pipeline_run(message_id=message.id)
    # then: nothing drafted, and the message says why
    message.refresh_from_db()
    assert draft is None
    assert message.pipeline_error == (
        "not drafted: an agent switched the copilot's drafts off for this ticket"
    )
    assert not Draft.objects.filter(ticket=ticket).exists()
    # when switched on again, the next message is drafted
    assert ticket_assist_set(ticket=ticket, actor=agent, enabled=True) is True
    follow_up = message_add(
        ticket=ticket, author_kind=AuthorKind.CUSTOMER, body=QUESTION,
        actor=Actor.for_customer(ticket.customer),
    )  # fmt: skip
    assert pipeline_run(message_id=follow_up.id) is not None


def test_a_fast_model_s_tokens_are_published_in_few_writes_the_first_at_once(db):
    # given: a draft stream and 40 word-sized tokens arriving at once (a fast model)
    from apps.copilot.services.stream import DraftStream
    from apps.llm.services import StreamEvent

    ticket_id = 987654
    stream_publish(ticket_id=ticket_id, event={"type": "start", "message_id": 1})
    stream = DraftStream(ticket_id)
    words = [f"word{index} " for index in range(40)]
    # when
    stream(StreamEvent("delta", words[0]))
    first = [e["text"] for e in stream_replay(ticket_id=ticket_id) if e["type"] == "delta"]
    for word in words[1:]:
        stream(StreamEvent("delta", word))
    stream.flush()
    # then: the first token at once, the rest in 48-character writes, nothing lost
    deltas = [e["text"] for e in stream_replay(ticket_id=ticket_id) if e["type"] == "delta"]
    assert first == ["word0 "]
    assert "".join(deltas) == "".join(words)
    assert 1 < len(deltas) <= 1 + len("".join(words[1:])) // 48 + 1
    assert all(len(text) < 48 + len("word39 ") for text in deltas)


def test_a_reset_drops_the_tokens_not_yet_published(db):
    # given
    from apps.copilot.services.stream import DraftStream
    from apps.llm.services import StreamEvent

    ticket_id = 987655
    stream_publish(ticket_id=ticket_id, event={"type": "start", "message_id": 1})
    stream = DraftStream(ticket_id)
    stream(StreamEvent("delta", "First model "))
    stream(StreamEvent("delta", "half an ans"))
    # when: the first model failed; another starts over
    stream(StreamEvent("reset", ""))
    stream(StreamEvent("delta", "Second model."))
    stream.flush()
    # then
    events = [(e["type"], e.get("text")) for e in stream_replay(ticket_id=ticket_id)]
    assert events == [
        ("start", None),
        ("delta", "First model "),
        ("reset", ""),
        ("delta", "Second model."),
    ]


def test_events_published_at_once_by_two_runs_are_replayed_in_seq_order_none_lost(db):
    # given: two runs publishing for the same ticket at the same time (a retry overlapping a
    # slow run, a regenerate): a reader skips any event whose seq is not above the last seen
    import threading

    ticket_id = 987656
    stream_publish(ticket_id=ticket_id, event={"type": "start", "message_id": 1})
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        barrier.wait()
        for index in range(150):
            stream_publish(ticket_id=ticket_id, event={"type": "delta", "text": f"{name}{index}"})

    # when
    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then: the list's order is the seq order, so no reader drops an event
    events = stream_replay(ticket_id=ticket_id)
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + 301))
    assert sorted(e["text"] for e in events[1:]) == sorted(
        f"{name}{index}" for name in ("a", "b") for index in range(150)
    )


def _async_sse_events(response) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """The events of an async streaming response (as an ASGI server would read it)."""
    from asgiref.sync import async_to_sync

    async def read() -> bytes:
        return b"".join([part async for part in response])

    text = async_to_sync(read)().decode()
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_every_draft_stream_is_an_async_response_that_skips_what_the_client_saw(
    copilot_ready, agent, async_client
):
    # given: a ticket whose stream holds three events, the client having seen the first two
    from asgiref.sync import async_to_sync

    from apps.accounts.services import api_key_create
    from apps.copilot.streaming import stream_publish

    ticket, message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    published = [
        stream_publish(ticket_id=ticket.id, event=event)
        for event in (
            {"type": "start", "message_id": message.id},
            {"type": "delta", "text": "Hello "},
            {"type": "final", "draft_id": 1, "decision": "needs_review", "reason": "x"},
        )
    ]
    _, key = api_key_create(name="stream", scopes=["read"])
    async_client.force_login(agent)
    seen = str(published[1]["seq"])
    # when: the API's and the inbox's streams are read again, as under ASGI, with what the
    # client saw last (Last-Event-ID, or the page's `after`)
    api = async_to_sync(async_client.get)(
        f"/api/v1/tickets/{ticket.id}/draft/stream",
        headers={"Authorization": f"Bearer {key}", "Last-Event-ID": seen},
    )
    inbox = async_to_sync(async_client.get)(f"/inbox/tickets/{ticket.id}/draft/stream?after={seen}")
    # then: both are async streams (no thread held while waiting), with only what the
    # client had not seen
    for response in (api, inbox):
        assert response.is_async is True
        assert [kind for kind, _ in _async_sse_events(response)] == ["final"]
    # and a fresh reader gets the whole draft
    fresh = async_to_sync(async_client.get)(
        f"/api/v1/tickets/{ticket.id}/draft/stream", headers={"Authorization": f"Bearer {key}"}
    )
    assert [kind for kind, _ in _async_sse_events(fresh)] == ["start", "delta", "final"]


def test_the_widget_stream_is_an_async_response(copilot_ready, client, async_client):
    # given: a widget conversation whose draft was handed to a person
    from apps.accounts.services import widget_key_create
    from apps.copilot.streaming import stream_publish

    key = widget_key_create(site_name="Shop", allowed_origins=["https://shop.example"])
    start = client.post(
        f"/widget/api/{key.public_key}/conversations",
        {"body": QUESTION},
        content_type="application/json",
        HTTP_ORIGIN="https://shop.example",
    ).json()
    stream_publish(
        ticket_id=start["conversation_id"],
        event={"type": "final", "draft_id": 1, "decision": "handed_off", "reason": "x"},
    )
    # when: read as under ASGI, and as under WSGI (a development server)
    from asgiref.sync import async_to_sync

    headers = {
        "Origin": "https://shop.example",
        "Authorization": f"Bearer {start['visitor_token']}",
    }
    asgi = async_to_sync(async_client.get)(f"/widget/api/{key.public_key}/stream", headers=headers)
    wsgi = client.get(f"/widget/api/{key.public_key}/stream", headers=headers)
    # then: the same events either way; only the ASGI one is async
    assert (asgi.is_async, wsgi.is_async) == (True, False)
    assert [kind for kind, _ in _async_sse_events(asgi)] == ["handed_off"]
    assert [kind for kind, _ in _sse_events(wsgi)] == ["handed_off"]
