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
from apps.tickets.models import AuthorKind, Channel, PipelineStatus, TicketStatus
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
    text = b"".join(response.streaming_content).decode()
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
        target=lambda: seen.extend(stream_events(ticket_id=ticket_id, timeout=10))
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
    assert list(stream_events(ticket_id=ticket.id, timeout=2)) == events


def test_the_customer_watches_a_draft_on_course_to_be_sent_and_not_a_reviewed_one(
    copilot_ready,
):
    # given: two widget conversations
    sent_ticket, sent_message = customer_ticket(QUESTION, channel=Channel.WIDGET)
    reviewed_ticket, reviewed_message = customer_ticket(REVIEW_QUESTION, channel=Channel.WIDGET)
    sent = pipeline_run(message_id=sent_message.id)
    pipeline_run(message_id=reviewed_message.id)
    # when
    sent_events = list(customer_stream_events(ticket_id=sent_ticket.id, timeout=2))
    reviewed_events = list(customer_stream_events(ticket_id=reviewed_ticket.id, timeout=2))
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
    return ticket, draft, list(customer_stream_events(ticket_id=ticket.id, timeout=2))


def test_a_watched_draft_that_fails_validation_is_retracted_from_the_customer(
    copilot_ready, fake_openai
):
    # given: a model that invents its answer
    invented = "Call our hotline on 0800 123 456 and quote code ZEBRA for a manual reset."
    # when
    _, draft, events = _watched_run(fake_openai, invented)
    # then: the text was shown while written, then withdrawn, and a person takes over
    assert (draft.decision, draft.reason) == ("handed_off", "ungrounded")
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
    raw = list(stream_events(ticket_id=ticket.id, timeout=2))
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
    events = list(customer_stream_events(ticket_id=ticket.id, timeout=2))
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
        target=lambda: seen.extend(customer_stream_events(ticket_id=ticket.id, timeout=10))
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


def test_regenerate_supersedes_the_current_draft_and_keeps_history(copilot_ready, api_key_client):
    # given
    ticket, message = customer_ticket(REVIEW_QUESTION)
    first = pipeline_run(message_id=message.id)
    # when
    response = api_key_client().post(f"/api/v1/tickets/{ticket.id}/draft/regenerate")
    # then
    assert response.status_code == 201
    new = response.json()
    first.refresh_from_db()
    assert (new["generation"], new["is_current"], new["status"]) == (2, True, "pending")
    assert (first.is_current, first.status) == (False, DraftStatus.SUPERSEDED)
    assert draft_current_for_ticket(ticket_id=ticket.id).id == new["id"]
    assert [d.id for d in drafts_for_ticket(ticket_id=ticket.id)] == [new["id"], first.id]


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


def test_a_taken_over_ticket_gets_no_draft_until_handed_back(copilot_ready, agent):
    # given
    ticket, message = customer_ticket(QUESTION)
    ticket_takeover(ticket=ticket, actor=agent)
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    ticket.refresh_from_db()
    message.refresh_from_db()
    assert draft is None
    assert (message.pipeline_status, message.pipeline_error) == (
        PipelineStatus.DONE,
        "not drafted: an agent took the ticket over",
    )
    assert ticket.assignee_id == agent.id
    assert ticket.status == TicketStatus.NEW
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()
    # when handed back, the next customer message is drafted again
    assert ticket_handback(ticket=ticket, actor=agent) is True
    regenerated = draft_regenerate(ticket=ticket, actor=agent)
    assert regenerated.generation == 1 and regenerated.status == DraftStatus.PENDING


def test_a_fast_model_s_tokens_are_published_in_few_writes_the_first_at_once(db):
    # given: a draft stream and 40 word-sized tokens arriving at once (a fast model)
    from apps.copilot.services import _DraftStream
    from apps.llm.services import StreamEvent

    ticket_id = 987654
    stream_publish(ticket_id=ticket_id, event={"type": "start", "message_id": 1})
    stream = _DraftStream(ticket_id)
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
    from apps.copilot.services import _DraftStream
    from apps.llm.services import StreamEvent

    ticket_id = 987655
    stream_publish(ticket_id=ticket_id, event={"type": "start", "message_id": 1})
    stream = _DraftStream(ticket_id)
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
