import pytest

from apps.accounts.services import user_create, widget_key_create
from apps.tickets.models import TicketEvent
from apps.tickets.services import Actor, customer_resolve, message_add, ticket_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):  # type: ignore[no-untyped-def]
    user_create(username="root", password="pw-123456789", role="admin")
    client.login(username="root", password="pw-123456789")
    return client


@pytest.fixture
def ticket():  # type: ignore[no-untyped-def]
    customer = customer_resolve(email="ada@example.com", name="Ada")
    ticket, _ = ticket_create(
        customer=customer, body="Refund please", channel="api", actor=Actor.system()
    )
    message_add(ticket=ticket, author_kind="agent", body="On it", actor=Actor.system())
    return ticket


@pytest.mark.parametrize(
    "url",
    [
        "/admin/tickets/ticket/?q=ada&status__exact=awaiting_customer",
        "/admin/tickets/message/?q=Refund&author_kind__exact=customer",
        "/admin/tickets/customer/?q=ada",
        "/admin/tickets/ticketevent/?kind__exact=created",
        "/admin/accounts/widgetkey/",
        "/admin/accounts/apikey/",
    ],
)
def test_admin_lists_search_and_filter(admin_client, ticket, url):
    # given
    widget_key_create(site_name="Shop", allowed_origins=["https://shop.example.com"])
    # when
    response = admin_client.get(url)
    # then
    assert response.status_code == 200


def test_ticket_page_shows_messages_and_events_read_only(admin_client, ticket):
    # when
    response = admin_client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert "Refund please" in content
    assert "On it" in content
    assert 'name="status"' not in content


def test_admin_resolve_action_goes_through_the_audited_service(admin_client, ticket):
    # when
    admin_client.post(
        "/admin/tickets/ticket/", {"action": "resolve", "_selected_action": [ticket.pk]}
    )
    # then
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    event = TicketEvent.objects.filter(ticket=ticket).last()
    assert (event.from_status, event.to_status, event.actor_kind) == (
        "awaiting_customer",
        "resolved",
        "agent",
    )


def test_events_cannot_be_edited_or_deleted_in_admin(admin_client, ticket):
    # given
    event = TicketEvent.objects.filter(ticket=ticket).first()
    # when
    response = admin_client.post(f"/admin/tickets/ticketevent/{event.pk}/delete/", {"post": "yes"})
    # then
    assert response.status_code == 403
    assert TicketEvent.objects.filter(pk=event.pk).exists()


def test_widget_key_admin_creates_a_key_with_clean_origins(admin_client):
    # when
    response = admin_client.post(
        "/admin/accounts/widgetkey/add/",
        {
            "site_name": "Blog",
            "allowed_origins": "https://Blog.example.com/\nhttp://localhost:8000",
            "is_active": "on",
        },
    )
    # then
    assert response.status_code == 302
    from apps.accounts.models import WidgetKey

    key = WidgetKey.objects.get(site_name="Blog")
    assert key.allowed_origins == ["https://blog.example.com", "http://localhost:8000"]
    assert key.public_key.startswith("wk_")


def test_widget_key_admin_refuses_a_path_as_origin(admin_client):
    # when
    response = admin_client.post(
        "/admin/accounts/widgetkey/add/",
        {
            "site_name": "Blog",
            "allowed_origins": "https://blog.example.com/page",
            "is_active": "on",
        },
    )
    # then
    assert response.status_code == 200
    assert "is not an origin like" in response.content.decode()
