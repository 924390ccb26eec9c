"""Visitor identity: a site's server signs its signed-in user; the widget start checks it."""

from __future__ import annotations

import hashlib
import hmac
import re
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.models import WidgetKey
from apps.accounts.services import widget_key_create, widget_key_identity_secret_rotate
from apps.tickets.models import Channel, Customer, Message, Ticket
from apps.tickets.services import Actor, customer_resolve, ticket_create

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"
MARIA = {"user_id": "u-42", "email": "maria@example.com", "name": "Maria Lopez"}


@pytest.fixture
def widget_key() -> WidgetKey:
    return widget_key_create(site_name="Shop", allowed_origins=[ORIGIN])


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def sign(secret: str, user_id: str, email: str = "", name: str = "") -> str:
    # Written out as docs/widget-identity.md tells a site's developer, not with our helper.
    message = f"{user_id}\n{email}\n{name}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(widget_key: WidgetKey, **user: str) -> dict[str, str]:
    return {**user, "hash": sign(widget_key.identity_secret, **user)}


def start(client, widget_key, **payload):  # type: ignore[no-untyped-def]
    payload.setdefault("body", "Where is my order?")
    return client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        payload,
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Ticket.objects.count(), Message.objects.count()


def first_message(response) -> Message:  # type: ignore[no-untyped-def]
    return Message.objects.get(pk=response.json()["message"]["id"])


def test_a_signed_visitor_is_the_customer_with_that_user_id(client, widget_key):
    # when
    response = start(client, widget_key, identity=signed(widget_key, **MARIA))
    # then
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["conversation_id"])
    customer = ticket.customer
    assert (customer.external_id, customer.email, customer.name) == (
        "u-42",
        "maria@example.com",
        "Maria Lopez",
    )
    assert first_message(response).metadata["widget"] == {
        "site": "Shop",
        "origin": ORIGIN,
        "identity": {
            "verified": True,
            "user_id": "u-42",
            "email": "maria@example.com",
            "name": "Maria Lopez",
        },
    }


def test_the_same_user_again_reuses_the_customer_with_the_new_name_and_email(client, widget_key):
    # given
    first = start(client, widget_key, identity=signed(widget_key, **MARIA))
    # when: she changed her name and address on the site since
    renamed = {"user_id": "u-42", "email": "maria.l@example.com", "name": "Maria López-Ruiz"}
    second = start(client, widget_key, identity=signed(widget_key, **renamed))
    # then
    assert second.status_code == 201, second.json()
    tickets = Ticket.objects.filter(
        pk__in=[first.json()["conversation_id"], second.json()["conversation_id"]]
    )
    assert {ticket.customer_id for ticket in tickets} == {Customer.objects.get().pk}
    customer = Customer.objects.get()
    assert (customer.external_id, customer.email, customer.name) == (
        "u-42",
        "maria.l@example.com",
        "Maria López-Ruiz",
    )


def test_a_signature_without_email_or_name_leaves_the_known_ones(client, widget_key):
    # given
    start(client, widget_key, identity=signed(widget_key, **MARIA))
    # when
    response = start(client, widget_key, identity=signed(widget_key, user_id="u-42"))
    # then
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get()
    assert (customer.email, customer.name) == ("maria@example.com", "Maria Lopez")


def test_a_signed_user_whose_address_another_customer_has_still_gets_the_conversation(
    client, widget_key
):
    # given: the address belongs to a customer the API created under another external id
    other = customer_resolve(external_id="crm-7", email="maria@example.com", name="Other")
    # when
    response = start(client, widget_key, identity=signed(widget_key, **MARIA))
    # then: the conversation is u-42's; the other customer keeps the address and name
    assert response.status_code == 201, response.json()
    customer = Ticket.objects.get(pk=response.json()["conversation_id"]).customer
    assert (customer.external_id, customer.email, customer.name) == ("u-42", "", "Maria Lopez")
    other.refresh_from_db()
    assert (other.email, other.name) == ("maria@example.com", "Other")


@pytest.mark.parametrize(
    "tampered",
    [
        {"user_id": "u-43"},
        {"email": "mallory@example.com"},
        {"name": "Mallory"},
        {"email": "Maria@example.com"},  # the exact strings are signed
    ],
)
def test_a_tampered_identity_is_refused_and_nothing_is_stored(client, widget_key, tampered):
    # given: a signature of Maria, with one value changed in the page
    identity = {**signed(widget_key, **MARIA), **tampered}
    # when
    response = start(client, widget_key, identity=identity)
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_signature_mismatch"
    assert response.json()["error"]["message"].startswith(
        "the identity signature (user_hash) does not match user_id, email and name"
    )
    assert counts() == (0, 0, 0)


def test_a_signature_made_with_another_secret_is_refused(client, widget_key):
    # given
    other = widget_key_create(site_name="Other", allowed_origins=[ORIGIN])
    # when
    response = start(client, widget_key, identity=signed(other, **MARIA))
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "identity_signature_mismatch"
    assert counts() == (0, 0, 0)


def test_an_uppercase_hex_signature_is_accepted(client, widget_key):
    # given
    identity = signed(widget_key, **MARIA)
    identity["hash"] = identity["hash"].upper()
    # when
    response = start(client, widget_key, identity=identity)
    # then
    assert response.status_code == 201, response.json()
    assert Customer.objects.get().external_id == "u-42"


def test_rotating_the_secret_invalidates_old_signatures(client, widget_key):
    # given: a page signed with the current secret
    old_identity = signed(widget_key, **MARIA)
    old_secret = widget_key.identity_secret
    # when
    new_secret = widget_key_identity_secret_rotate(widget_key=widget_key)
    refused = start(client, widget_key, identity=old_identity)
    # then
    assert new_secret != old_secret
    assert WidgetKey.objects.get().identity_secret == new_secret
    assert refused.status_code == 403
    assert counts() == (0, 0, 0)
    accepted = start(client, widget_key, identity=signed(widget_key, **MARIA))
    assert accepted.status_code == 201


def test_identity_required_refuses_an_anonymous_or_unsigned_start(client, widget_key):
    # given
    WidgetKey.objects.filter(pk=widget_key.pk).update(identity_required=True)
    widget_key.refresh_from_db()
    # when
    anonymous = start(client, widget_key)
    unsigned = start(client, widget_key, identity={"user_id": "u-42", "name": "Maria"})
    # then
    for response in (anonymous, unsigned):
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "identity_required"
        assert error["message"].startswith("this chat is for signed-in visitors only")
    assert counts() == (0, 0, 0)
    # and a signed visitor is welcome
    assert start(client, widget_key, identity=signed(widget_key, **MARIA)).status_code == 201


def test_unsigned_identity_fields_stay_claims_and_never_find_a_customer(client, widget_key):
    # given: a known customer with that user id and address
    known = customer_resolve(external_id="u-42", email="maria@example.com", name="Maria Lopez")
    # when: a page (or a visitor in the console) passes the same values without a signature
    response = start(client, widget_key, identity={**MARIA, "hash": ""})
    # then: a new anonymous customer, the values kept as claims, the known one untouched
    assert response.status_code == 201, response.json()
    customer = Ticket.objects.get(pk=response.json()["conversation_id"]).customer
    assert customer.pk != known.pk
    assert (customer.external_id, customer.email, customer.name) == ("", "", "")
    assert first_message(response).metadata["widget"] == {
        "site": "Shop",
        "origin": ORIGIN,
        "claimed_user_id": "u-42",
        "claimed_email": "maria@example.com",
        "claimed_name": "Maria Lopez",
    }
    known.refresh_from_db()
    assert (known.email, known.name) == ("maria@example.com", "Maria Lopez")


def test_a_signed_visitors_token_reaches_only_the_new_conversation(client, widget_key):
    # given: Maria already has a ticket by email and an earlier widget conversation
    maria = customer_resolve(external_id="u-42", email="maria@example.com", name="Maria Lopez")
    ticket_create(
        customer=maria, body="Invoice please", channel=Channel.API, actor=Actor.for_customer(maria)
    )
    earlier = start(client, widget_key, body="Earlier", identity=signed(widget_key, **MARIA))
    # when
    latest = start(client, widget_key, body="Latest", identity=signed(widget_key, **MARIA))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {latest.json()['visitor_token']}")
    seen = client.get(f"/widget/api/{widget_key.public_key}/messages", HTTP_ORIGIN=ORIGIN)
    # then
    assert Ticket.objects.filter(customer=maria).count() == 3
    assert seen.json()["conversation_id"] == latest.json()["conversation_id"]
    assert seen.json()["conversation_id"] != earlier.json()["conversation_id"]
    assert [message["body"] for message in seen.json()["messages"]] == ["Latest"]


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"user_id": "x" * 201, "hash": "0" * 64}, "identity.user_id"),
        ({"user_id": "u-42", "email": "not-an-address", "hash": "0" * 64}, "identity.email"),
        ({"user_id": "u-42", "hash": "z" * 64}, "identity.hash"),
        ({"user_id": "u-42", "hash": "abc"}, "identity.hash"),
        ({"email": "maria@example.com", "hash": "0" * 64}, "identity.user_id"),
        ({"user_id": " u-42", "hash": "0" * 64}, "identity.user_id"),
        ({"user_id": "u-42", "name": "Maria\nLopez", "hash": "0" * 64}, "identity.name"),
        ({"user_id": 42, "hash": "0" * 64}, "identity.user_id"),
        ({"user_id": "u-42", "role": "admin"}, "identity.role"),
    ],
)
def test_malformed_identity_is_refused_naming_the_field(client, widget_key, identity, field):
    # when
    response = start(client, widget_key, identity=identity)
    # then
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert counts() == (0, 0, 0)


def test_widgetkey_create_prints_the_identity_secret_once_on_stderr():
    # given
    out, err = StringIO(), StringIO()
    # when
    call_command("widgetkey_create", "Shop", f"--origin={ORIGIN}", stdout=out, stderr=err)
    again_out, again_err = StringIO(), StringIO()
    call_command("widgetkey_create", "Shop", "--if-missing", stdout=again_out, stderr=again_err)
    # then: stdout is the public key alone; the secret is said once, with what it is for
    widget_key = WidgetKey.objects.get()
    assert out.getvalue().strip() == again_out.getvalue().strip() == widget_key.public_key
    assert re.search(
        rf"^identity secret \(keep it on your server.*\): {re.escape(widget_key.identity_secret)}$",
        err.getvalue(),
        re.MULTILINE,
    )
    assert widget_key.identity_secret not in again_err.getvalue()


def test_every_widget_key_gets_its_own_secret():
    # when
    keys = [widget_key_create(site_name=f"Site {n}", allowed_origins=[]) for n in range(3)]
    # then
    secrets = {key.identity_secret for key in keys}
    assert len(secrets) == 3
    assert all(len(secret) >= 43 for secret in secrets)


def test_the_signed_in_demo_page_signs_its_user_with_the_keys_secret(client, widget_key):
    # given
    demo_key = widget_key_create(site_name="Demo site", allowed_origins=["http://testserver"])
    # when
    signed_in = client.get("/widget/demo/?as=signed-in").content.decode()
    anonymous = client.get("/widget/demo/").content.decode()
    # then
    expected = sign(demo_key.identity_secret, "demo-42", "maria@example.com", "Maria Lopez")
    assert 'data-user-id="demo-42"' in signed_in
    assert 'data-user-email="maria@example.com"' in signed_in
    assert 'data-user-name="Maria Lopez"' in signed_in
    assert f'data-user-hash="{expected}"' in signed_in
    assert "data-user-" not in anonymous
    assert demo_key.identity_secret not in signed_in
