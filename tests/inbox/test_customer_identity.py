"""The ticket page says who a widget visitor is: signed by the site, claimed, or anonymous."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import WidgetKey
from apps.accounts.services import widget_identity_hash, widget_key_create
from apps.tickets.models import Channel, Ticket
from apps.tickets.services import customer_resolve
from tests.inbox.factories import conversation_create

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"


@pytest.fixture
def widget_key() -> WidgetKey:
    return widget_key_create(site_name="Shop", allowed_origins=[ORIGIN])


def widget_start(widget_key: WidgetKey, **payload: object) -> Ticket:
    response = APIClient().post(
        f"/widget/api/{widget_key.public_key}/conversations",
        {"body": "Where is my order?", **payload},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )
    assert response.status_code == 201, response.json()
    return Ticket.objects.get(pk=response.json()["conversation_id"])


def customer_card(agent_client, ticket: Ticket) -> str:  # type: ignore[no-untyped-def]
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    card = re.search(r'<section [^>]*aria-labelledby="customer-title">.*?</section>', page, re.S)
    assert card is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card.group(0))).strip()


def test_a_signed_visitor_shows_by_name_and_email_marked_verified(agent_client, widget_key):
    # given
    user = {"user_id": "u-42", "email": "maria@example.com", "name": "Maria Lopez"}
    hash_ = widget_identity_hash(secret=widget_key.identity_secret, **user)
    ticket = widget_start(widget_key, identity={**user, "hash": hash_})
    # when
    card = customer_card(agent_client, ticket)
    # then
    assert card.startswith("Customer Maria Lopez · maria@example.com ✓ verified Name Maria Lopez")
    assert "External id u-42" in card
    assert "unverified" not in card


def test_an_unsigned_claim_shows_as_what_the_visitor_says_unverified(agent_client, widget_key):
    # given
    ticket = widget_start(widget_key, name="Sam", email="sam@example.com")
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    card = customer_card(agent_client, ticket)
    # then
    assert card.startswith("Customer Sam (says: sam@example.com — unverified) Name — Email —"), card
    assert "✓ verified" not in page
    assert ticket.customer.name == ""


def test_an_unsigned_identity_shows_its_user_id_as_a_claim(agent_client, widget_key):
    # given
    ticket = widget_start(widget_key, identity={"user_id": "u-42", "name": "Maria Lopez"})
    # when
    card = customer_card(agent_client, ticket)
    # then
    assert card.startswith("Customer Maria Lopez (says: user id u-42 — unverified)"), card


def test_an_anonymous_visitor_is_a_website_visitor(agent_client, widget_key):
    # given
    ticket = widget_start(widget_key)
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # then
    assert f"Website visitor #{ticket.customer_id}" in page
    assert f"customer #{ticket.customer_id}" not in page


def test_an_api_customer_shows_as_before(agent_client):
    # given
    customer = customer_resolve(email="ada@example.com")
    ticket = conversation_create(customer=customer, channel=Channel.API)
    # when
    card = customer_card(agent_client, ticket)
    # then
    assert card.startswith("Customer ada@example.com Name — Email ada@example.com"), card
