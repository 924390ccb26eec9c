"""Endpoints the chat widget's UI uses beyond messages: thumbs, talk to a human, CSAT; and
the demo page and the static files the embed tag loads."""

import json

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import widget_key_create
from apps.feedback.models import CsatRating, FlaggedReply, ReplyRating
from apps.tickets.models import AuthorKind, Ticket, TicketEvent, TicketStatus
from apps.tickets.services import Actor, message_add, ticket_resolve

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"


@pytest.fixture
def widget_key():  # type: ignore[no-untyped-def]
    return widget_key_create(site_name="Shop", allowed_origins=[ORIGIN])


@pytest.fixture
def visitor(widget_key):  # type: ignore[no-untyped-def]
    """A client holding a started conversation's visitor token, and that conversation."""
    client = APIClient()
    started = client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        {"body": "Is my order shipped?"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started['visitor_token']}")
    return client, Ticket.objects.get(pk=started["conversation_id"])


def post(client, widget_key, path, payload):  # type: ignore[no-untyped-def]
    return client.post(
        f"/widget/api/{widget_key.public_key}{path}", payload, format="json", HTTP_ORIGIN=ORIGIN
    )


def test_visitor_rates_a_reply_and_a_thumbs_down_is_flagged(widget_key, visitor):
    # given
    client, ticket = visitor
    reply = message_add(
        ticket=ticket, author_kind=AuthorKind.COPILOT, body="Yes.", actor=Actor.copilot()
    )
    # when
    response = post(client, widget_key, f"/messages/{reply.pk}/rating", {"value": "down"})
    # then
    assert response.status_code == 200, response.json()
    assert response.json() == {"message_id": reply.pk, "value": "down"}
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert ReplyRating.objects.get().value == "down"
    assert FlaggedReply.objects.get().message_id == reply.pk


def test_rating_a_message_of_another_conversation_is_404(widget_key, visitor):
    # given
    client, _ = visitor
    other_client = APIClient()
    other = other_client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        {"body": "Another visitor"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    other_ticket = Ticket.objects.get(pk=other["conversation_id"])
    reply = message_add(
        ticket=other_ticket, author_kind=AuthorKind.AGENT, body="Hi", actor=Actor.system()
    )
    # when
    response = post(client, widget_key, f"/messages/{reply.pk}/rating", {"value": "up"})
    # then
    assert response.status_code == 404
    assert ReplyRating.objects.count() == 0


@pytest.mark.parametrize("payload", [{"value": "meh"}, {"value": 1}, {}, {"value": "up", "x": 1}])
def test_invalid_rating_is_400_and_stores_nothing(widget_key, visitor, payload):
    # given
    client, ticket = visitor
    reply = message_add(
        ticket=ticket, author_kind=AuthorKind.AGENT, body="Hi", actor=Actor.system()
    )
    # when
    response = post(client, widget_key, f"/messages/{reply.pk}/rating", payload)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert ReplyRating.objects.count() == 0


def test_rating_needs_the_visitor_token(widget_key, visitor):
    # given
    _, ticket = visitor
    reply = message_add(
        ticket=ticket, author_kind=AuthorKind.AGENT, body="Hi", actor=Actor.system()
    )
    # when
    response = post(APIClient(), widget_key, f"/messages/{reply.pk}/rating", {"value": "up"})
    # then
    assert response.status_code == 401
    assert ReplyRating.objects.count() == 0


def test_talk_to_a_human_hands_the_conversation_off_once(widget_key, visitor):
    # given
    client, ticket = visitor
    # when
    first = post(client, widget_key, "/human", {})
    second = post(client, widget_key, "/human", {})
    # then
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"conversation_id": ticket.pk, "status": "handed_off"}
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.HANDED_OFF
    event = TicketEvent.objects.get(ticket=ticket, to_status="handed_off")
    assert (event.actor_kind, event.reason) == ("customer", "the customer asked for a human")


def test_talk_to_a_human_on_a_closed_conversation_is_a_clear_409(widget_key, visitor):
    # given
    client, ticket = visitor
    ticket_resolve(ticket=ticket, actor=Actor.system())
    # when
    response = post(client, widget_key, "/human", {})
    # then
    assert response.status_code == 409
    assert "cannot hand off" in response.json()["error"]["message"]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED


def test_visitor_gives_csat(widget_key, visitor):
    # given
    client, ticket = visitor
    # when
    response = post(client, widget_key, "/csat", {"score": 4, "comment": "quick"})
    refused = post(client, widget_key, "/csat", {"score": "5"})
    # then
    assert response.status_code == 200
    assert refused.status_code == 400
    assert CsatRating.objects.get(ticket=ticket).score == 4


def test_demo_page_embeds_the_widget_with_a_key_for_its_origin(client):
    # given
    widget_key = widget_key_create(site_name="Demo", allowed_origins=["http://testserver"])
    # when
    response = client.get("/widget/demo/")
    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert 'src="http://testserver/static/widget/deskpilot-widget.js"' in page
    assert f'data-widget-key="{widget_key.public_key}"' in page


def test_demo_page_without_a_key_explains_how_to_make_one(client):
    # when
    page = client.get("/widget/demo/").content.decode()
    # then
    assert "No active widget key allows this page's origin" in page
    assert "deskpilot-widget.js" not in page


@pytest.mark.django_db(transaction=True)
def test_widget_static_files_are_served(live_server):
    # given
    import urllib.request

    # when
    with urllib.request.urlopen(f"{live_server.url}/static/widget/deskpilot-widget.js") as r:  # noqa: S310
        script = r.read().decode()
    with urllib.request.urlopen(f"{live_server.url}/static/widget/deskpilot-widget.css") as r:  # noqa: S310
        styles = r.read().decode()
    # then
    assert "attachShadow" in script
    assert "innerHTML" not in script  # everything shown is set as text
    assert ":host" in styles


def test_same_origin_read_without_an_origin_header_is_allowed_for_the_servers_own_origin():
    # given: a widget key for the server's own origin, as the demo page uses
    own = widget_key_create(site_name="Own", allowed_origins=["http://testserver"])
    client = APIClient()
    started = client.post(
        f"/widget/api/{own.public_key}/conversations",
        {"body": "Hi"},
        format="json",
        HTTP_ORIGIN="http://testserver",
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started['visitor_token']}")
    # when: a browser's same-origin GET carries Sec-Fetch-Site but no Origin
    same_origin = client.get(
        f"/widget/api/{own.public_key}/messages", HTTP_SEC_FETCH_SITE="same-origin"
    )
    cross_site = client.get(
        f"/widget/api/{own.public_key}/messages", HTTP_SEC_FETCH_SITE="cross-site"
    )
    # then
    assert same_origin.status_code == 200
    assert [m["body"] for m in same_origin.json()["messages"]] == ["Hi"]
    assert cross_site.status_code == 403


def test_stream_tells_the_visitor_typing_then_the_reply_without_the_draft_text(widget_key, visitor):
    # given: the pipeline's events for this conversation, published as the worker does
    from apps.copilot.streaming import stream_publish

    client, ticket = visitor
    for event in (
        {"type": "start", "message_id": 1},
        {"type": "delta", "text": "Hi! It ships "},
        {"type": "delta", "text": "today."},
        {"type": "final", "draft_id": 1, "decision": "auto_sent", "reason": ""},
    ):
        stream_publish(ticket_id=ticket.pk, event=event)
    # when
    response = client.get(f"/widget/api/{widget_key.public_key}/stream", HTTP_ORIGIN=ORIGIN)
    body = b"".join(response).decode()
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "event: typing" in body
    assert "event: message" in body
    assert '"body": "Hi! It ships today."' in body
    assert "event: delta" not in body


def test_stream_shows_a_draft_on_course_to_be_sent_as_it_is_written(widget_key, visitor):
    # given
    from apps.copilot.streaming import stream_publish

    client, ticket = visitor
    for event in (
        {"type": "start", "message_id": 1},
        {"type": "audience", "customer": True},
        {"type": "delta", "text": "Hi! It ships "},
        {"type": "delta", "text": "today, "},
        {"type": "delta", "text": "by post."},
        {"type": "final", "draft_id": 1, "decision": "auto_sent", "reason": "", "body": "Hi!"},
    ):
        stream_publish(ticket_id=ticket.pk, event=event)
    # when: asked for as the widget and EventSource ask
    response = client.get(
        f"/widget/api/{widget_key.public_key}/stream",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCEPT="text/event-stream",
    )
    body = b"".join(response).decode()
    # then
    assert response.status_code == 200
    assert body.count("event: delta") == 3  # word by word: "post." comes with the message
    assert '"text": "Hi! It ships "' in body
    assert '"text": "by "' in body
    assert "event: typing" not in body
    assert "event: audience" not in body
    assert body.index("event: delta") < body.index("event: message")


def test_stream_of_a_draft_for_review_never_shows_its_text(widget_key, visitor):
    # given
    from apps.copilot.streaming import stream_publish

    client, ticket = visitor
    for event in (
        {"type": "start", "message_id": 1},
        {"type": "delta", "text": "Unreviewed text"},
        {"type": "final", "draft_id": 1, "decision": "needs_review", "reason": "x"},
    ):
        stream_publish(ticket_id=ticket.pk, event=event)
    # when
    response = client.get(f"/widget/api/{widget_key.public_key}/stream", HTTP_ORIGIN=ORIGIN)
    body = b"".join(response).decode()
    # then
    assert "event: needs_review" in body
    assert "Unreviewed text" not in body


def test_stream_needs_the_visitor_token(widget_key, visitor):
    # when
    response = APIClient().get(
        f"/widget/api/{widget_key.public_key}/stream",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCEPT="text/event-stream",
    )
    # then: the error is still a readable JSON body
    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] == "not_authenticated"
