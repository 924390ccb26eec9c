from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tickets.models import Ticket
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [ticket["id"] for ticket in response.json()["results"]]


def test_list_is_newest_first_with_customer(api_key_client):
    # given
    older, newer = TicketFactory(), TicketFactory()
    # when
    response = api_key_client(scopes=("read",)).get("/api/v1/tickets")
    # then
    assert response.status_code == 200
    assert ids(response) == [newer.pk, older.pk]
    assert response.json()["results"][0]["customer"]["email"] == newer.customer.email


def test_list_filters_by_status_channel_and_intent(api_key_client):
    # given
    wanted = TicketFactory(status="handed_off", channel="email", intent="refund")
    TicketFactory(status="handed_off", channel="email", intent="shipping")
    TicketFactory(status="new", channel="email", intent="refund")
    TicketFactory(status="handed_off", channel="widget", intent="refund")
    # when
    response = api_key_client().get(
        "/api/v1/tickets", {"status": "handed_off", "channel": "email", "intent": "refund"}
    )
    # then
    assert ids(response) == [wanted.pk]


def test_list_filters_by_updated_since(api_key_client):
    # given
    old, recent = TicketFactory(), TicketFactory()
    Ticket.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    # when
    response = api_key_client().get("/api/v1/tickets", {"updated_since": since})
    # then
    assert ids(response) == [recent.pk]


def test_cursor_pagination_walks_every_ticket_once(api_key_client):
    # given
    created = [TicketFactory().pk for _ in range(5)]
    client = api_key_client()
    # when
    seen: list[int] = []
    url = "/api/v1/tickets?limit=2"
    while url:
        page = client.get(url).json()
        seen += [ticket["id"] for ticket in page["results"]]
        url = page["next"]
    # then
    assert seen == sorted(created, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "open"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_filters_are_refused_naming_the_parameter(api_key_client, query, field):
    # when
    response = api_key_client().get("/api/v1/tickets", query)
    # then
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_write_only_key_cannot_list(api_key_client):
    # when
    response = api_key_client(scopes=("write",)).get("/api/v1/tickets")
    # then
    assert response.status_code == 403


@pytest.mark.parametrize("position", ["abc", "1%00", "99999999999999999999999", "-5", "\u00b3"])
def test_crafted_cursor_is_refused_not_a_500(api_key_client, position):
    # given: a well-encoded cursor whose position is not a ticket id
    import base64

    cursor = base64.b64encode(f"p={position}".encode()).decode()
    TicketFactory()
    # when
    response = api_key_client().get("/api/v1/tickets", {"cursor": cursor})
    # then
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"cursor": ["invalid cursor"]}
