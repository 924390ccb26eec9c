from datetime import timedelta

import pytest
from django.core import signing
from rest_framework.test import APIClient

from apps.accounts.services import widget_key_create
from apps.core.exceptions import ValidationError
from apps.tickets.models import Customer, Message, Ticket
from apps.tickets.services import Actor, message_add
from apps.widget.tokens import SALT

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"


@pytest.fixture
def widget_key():  # type: ignore[no-untyped-def]
    return widget_key_create(site_name="Shop", allowed_origins=[ORIGIN + "/"])


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def start(client, widget_key, origin=ORIGIN, **payload):  # type: ignore[no-untyped-def]
    payload.setdefault("body", "Hi, is my order shipped?")
    return client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        payload,
        format="json",
        HTTP_ORIGIN=origin,
    )


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Ticket.objects.count(), Message.objects.count()


def test_visitor_starts_a_conversation_and_gets_a_token(client, widget_key):
    # when
    response = start(client, widget_key, name="Vi", email="vi@example.com")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    ticket = Ticket.objects.get(pk=body["conversation_id"])
    assert ticket.channel == "widget"
    # the typed address is an unverified claim, not the customer's identity
    assert ticket.customer.email == ""
    first = Message.objects.get(pk=response.json()["message"]["id"])
    assert first.metadata["widget"]["claimed_email"] == "vi@example.com"
    assert ticket.customer.identities.get().channel == "widget"
    assert body["message"]["body"] == "Hi, is my order shipped?"
    assert body["visitor_token"]
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Vary"] == "Origin"


def test_visitor_posts_and_reads_messages_since_an_id(client, widget_key):
    # given
    started = start(client, widget_key).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started['visitor_token']}")
    url = f"/widget/api/{widget_key.public_key}/messages"
    posted = client.post(url, {"body": "Order 42"}, format="json", HTTP_ORIGIN=ORIGIN).json()
    ticket = Ticket.objects.get(pk=started["conversation_id"])
    message_add(ticket=ticket, author_kind="agent", body="Shipped today.", actor=Actor.system())
    message_add(ticket=ticket, author_kind="system", body="internal", actor=Actor.system())
    # when
    everything = client.get(url, HTTP_ORIGIN=ORIGIN).json()
    since = client.get(f"{url}?since={posted['id']}", HTTP_ORIGIN=ORIGIN).json()
    # then
    assert [(m["author_kind"], m["body"]) for m in everything["messages"]] == [
        ("customer", "Hi, is my order shipped?"),
        ("customer", "Order 42"),
        ("agent", "Shipped today."),
    ]
    assert [m["body"] for m in since["messages"]] == ["Shipped today."]
    assert since["status"] == "awaiting_customer"


@pytest.mark.parametrize(
    "origin", ["https://evil.example.com", "http://shop.example.com", "", "null"]
)
def test_start_from_a_foreign_or_missing_origin_is_refused(client, widget_key, origin):
    # when
    response = start(client, widget_key, origin=origin)
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "Access-Control-Allow-Origin" not in response
    assert counts() == (0, 0, 0)


def test_preflight_is_answered_with_the_allowed_origin_only(client, widget_key):
    # when
    allowed = client.options(
        f"/widget/api/{widget_key.public_key}/messages",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    refused = client.options(
        f"/widget/api/{widget_key.public_key}/messages",
        HTTP_ORIGIN="https://evil.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    # then
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_unknown_or_disabled_widget_key_is_404(client, widget_key):
    # given
    widget_key.is_active = False
    widget_key.save()
    # when
    response = start(client, widget_key)
    # then
    assert response.status_code == 404
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": ""}, "body"),
        ({"body": 5}, "body"),
        ({"body": "x", "email": "nope"}, "email"),
        ({"body": "x", "admin": True}, "admin"),
    ],
)
def test_invalid_start_is_refused_and_creates_nothing(client, widget_key, payload, field):
    # when
    response = client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        payload,
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )
    # then
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert counts() == (0, 0, 0)


def test_body_over_the_cap_is_refused(client, widget_key, settings):
    # given
    settings.MESSAGE_MAX_CHARS = 50
    # when
    response = start(client, widget_key, body="y" * 51)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "body": ["body is 51 characters long; the limit is 50"]
    }
    assert counts() == (0, 0, 0)


def test_malformed_json_is_refused(client, widget_key):
    # when
    response = client.generic(
        "POST",
        f"/widget/api/{widget_key.public_key}/conversations",
        b"{body",
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    )
    # then
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("the request body is not valid JSON")
    assert counts() == (0, 0, 0)


def _post_with_token(client, widget_key, token):  # type: ignore[no-untyped-def]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.post(
        f"/widget/api/{widget_key.public_key}/messages",
        {"body": "again"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )


def test_tampered_token_is_refused(client, widget_key):
    # given
    token = start(client, widget_key).json()["visitor_token"]
    before = counts()
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    # when
    response = _post_with_token(client, widget_key, tampered)
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "the visitor token is not valid"
    assert counts() == before


def test_token_forged_for_another_ticket_without_the_key_is_refused(client, widget_key):
    # given: a token signed with another secret, naming someone else's conversation
    token = signing.dumps({"w": widget_key.pk, "t": 1, "c": 1}, salt=SALT, key="x" * 50)
    # when
    response = _post_with_token(client, widget_key, token)
    # then
    assert response.status_code == 401
    assert counts() == (0, 0, 0)


def test_expired_token_is_refused(client, widget_key, settings):
    # given
    token = start(client, widget_key).json()["visitor_token"]
    before = counts()
    settings.WIDGET_VISITOR_TOKEN_MAX_AGE_SECONDS = -1
    # when
    response = _post_with_token(client, widget_key, token)
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "the visitor token has expired; start a new conversation"
    )
    assert counts() == before


def test_token_of_another_widget_is_refused(client, widget_key):
    # given
    other = widget_key_create(site_name="Other", allowed_origins=[ORIGIN])
    token = start(client, other).json()["visitor_token"]
    before = counts()
    # when
    response = _post_with_token(client, widget_key, token)
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "the visitor token belongs to another widget"
    assert counts() == before


def test_messages_without_token_are_refused(client, widget_key):
    # when
    response = client.get(f"/widget/api/{widget_key.public_key}/messages", HTTP_ORIGIN=ORIGIN)
    # then
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("since", ["abc", "-1", "1.5"])
def test_invalid_since_is_refused(client, widget_key, since):
    # given
    token = start(client, widget_key).json()["visitor_token"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # when
    response = client.get(
        f"/widget/api/{widget_key.public_key}/messages?since={since}", HTTP_ORIGIN=ORIGIN
    )
    # then
    assert response.status_code == 400
    assert "since" in response.json()["error"]["fields"]


@pytest.mark.parametrize("origin", ["https://shop.example.com/path", "*", "shop.example.com"])
def test_widget_key_refuses_an_origin_that_is_not_an_origin(origin):
    # when / then
    with pytest.raises(ValidationError, match="is not an origin like"):
        widget_key_create(site_name="x", allowed_origins=[origin])


def test_token_expiry_is_announced(client, widget_key, settings):
    # given
    settings.WIDGET_VISITOR_TOKEN_MAX_AGE_SECONDS = 3600
    # when
    body = start(client, widget_key).json()
    # then
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    expires_at = parse_datetime(body["token_expires_at"])
    assert timedelta(minutes=59) < expires_at - timezone.now() <= timedelta(hours=1)


def test_widgetkey_create_command_prints_the_key_once_per_site(capsys):
    # given
    from django.core.management import call_command

    from apps.accounts.models import WidgetKey

    # when
    call_command("widgetkey_create", "Demo", "--origin", ORIGIN, "--if-missing")
    first = capsys.readouterr().out.strip()
    call_command("widgetkey_create", "Demo", "--origin", ORIGIN, "--if-missing")
    second = capsys.readouterr().out.strip()
    # then
    assert first == second == WidgetKey.objects.get().public_key
    assert WidgetKey.objects.get().allowed_origins == [ORIGIN]


@pytest.mark.parametrize("public_key", ["%00", "wk_%00abc", "x" * 300])
def test_malformed_widget_key_in_the_path_is_a_404(client, public_key):
    # when
    response = client.post(
        f"/widget/api/{public_key}/conversations",
        {"body": "hi"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )
    # then
    assert response.status_code == 404
    assert counts() == (0, 0, 0)


def test_widget_visitor_typing_an_existing_customers_email_gets_a_new_customer(client, widget_key):
    # given: a known customer with history
    victim = Customer.objects.create(email="victim@example.com", name="Victim")
    # when: a visitor claims that address in the widget
    response = start(client, widget_key, name="Mallory", email="victim@example.com")
    # then: the conversation is not filed under the existing customer, whose record is untouched
    assert response.status_code == 201
    ticket = Ticket.objects.get(pk=response.json()["conversation_id"])
    assert ticket.customer_id != victim.pk
    victim.refresh_from_db()
    assert victim.name == "Victim"


def test_an_internal_note_never_reaches_the_visitor(client, widget_key):
    # given: a conversation, an agent's note and an agent's reply
    started = start(client, widget_key).json()
    ticket = Ticket.objects.get(pk=started["conversation_id"])
    agent_actor = Actor.system()
    message_add(ticket=ticket, author_kind="note", body="internal: fraud check", actor=agent_actor)
    message_add(ticket=ticket, author_kind="agent", body="We are on it.", actor=agent_actor)
    # when
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started['visitor_token']}")
    body = client.get(f"/widget/api/{widget_key.public_key}/messages", HTTP_ORIGIN=ORIGIN).json()
    # then
    assert [m["body"] for m in body["messages"]] == ["Hi, is my order shipped?", "We are on it."]
