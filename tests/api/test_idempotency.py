import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import IdempotencyRecord
from apps.accounts.services import api_key_create
from apps.tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db


def test_same_key_and_same_request_returns_first_answer_and_creates_nothing(api_key_client):
    # given
    client = api_key_client()
    payload = {"customer": {"email": "a@example.com"}, "body": "help"}
    first = client.post("/api/v1/tickets", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # when
    second = client.post("/api/v1/tickets", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # then
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1


def test_same_key_with_key_order_changed_is_the_same_request(api_key_client):
    # given
    client = api_key_client()
    client.generic(
        "POST",
        "/api/v1/tickets",
        b'{"subject": "s", "body": "b"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    # when
    again = client.generic(
        "POST",
        "/api/v1/tickets",
        b'{"body": "b", "subject": "s"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    # then
    assert again.status_code == 201
    assert Ticket.objects.count() == 1


def test_same_key_with_a_different_body_is_refused_with_422(api_key_client):
    # given
    client = api_key_client()
    client.post("/api/v1/tickets", {"body": "one"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    # when
    response = client.post(
        "/api/v1/tickets", {"body": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": "this Idempotency-Key was already used with a different request; "
        "use a new key for a new request",
        "fields": {
            "Idempotency-Key": [
                "this Idempotency-Key was already used with a different request; "
                "use a new key for a new request"
            ]
        },
    }
    assert Ticket.objects.count() == 1


def test_a_key_older_than_its_lifetime_is_new_again(api_key_client, settings):
    # given: a key used for one request, then left past IDEMPOTENCY_KEY_TTL_HOURS
    from datetime import timedelta

    from django.utils import timezone

    client = api_key_client()
    client.post("/api/v1/tickets", {"body": "one"}, format="json", HTTP_IDEMPOTENCY_KEY="k-old")
    IdempotencyRecord.objects.filter(key="k-old").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS, minutes=1)
    )
    # when: the same key comes with another request
    response = client.post(
        "/api/v1/tickets", {"body": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k-old"
    )
    # then: it is a new request, answered and remembered in place of the expired one
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Ticket.objects.count() == 2
    assert IdempotencyRecord.objects.filter(key="k-old").count() == 1
    again = client.post(
        "/api/v1/tickets", {"body": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k-old"
    )
    assert again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 2


def test_same_key_on_another_endpoint_is_refused(api_key_client):
    # given
    client = api_key_client()
    created = client.post(
        "/api/v1/tickets", {"body": "one"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3"
    ).json()
    # when
    response = client.post(
        f"/api/v1/tickets/{created['id']}/messages",
        {"body": "one"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-3",
    )
    # then
    assert response.status_code == 422
    assert Message.objects.count() == 1


def test_keys_are_separate_per_api_key(api_key_client):
    # given
    first_client = api_key_client(name="one")
    second_client = api_key_client(name="two")
    # when
    first_client.post("/api/v1/tickets", {"body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second_client.post("/api/v1/tickets", {"body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    # then
    assert Ticket.objects.count() == 2


def test_message_post_with_same_key_adds_one_message(api_key_client):
    # given
    client = api_key_client()
    ticket_id = client.post("/api/v1/tickets", {"body": "x"}, format="json").json()["id"]
    url = f"/api/v1/tickets/{ticket_id}/messages"
    # when
    first = client.post(url, {"body": "y"}, format="json", HTTP_IDEMPOTENCY_KEY="m")
    second = client.post(url, {"body": "y"}, format="json", HTTP_IDEMPOTENCY_KEY="m")
    # then
    assert first.json() == second.json()
    assert Message.objects.filter(ticket_id=ticket_id).count() == 2


def test_refused_request_is_not_stored_so_a_fixed_retry_is_not_blocked(api_key_client):
    # given
    client = api_key_client()
    refused = client.post("/api/v1/tickets", {"body": ""}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    # when
    retried = client.post("/api/v1/tickets", {"body": ""}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    # then
    assert refused.status_code == retried.status_code == 400
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "a b"])
def test_malformed_idempotency_key_is_refused(api_key_client, key):
    # given
    client = api_key_client()
    # when
    response = client.post(
        "/api/v1/tickets", {"body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    # then
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert Ticket.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_the_same_key_create_one_ticket():
    # given: six threads, each with its own database connection and transaction
    _, key = api_key_create(name="concurrent", scopes=["read", "write"])
    results: list[tuple[int, dict, bool]] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        barrier.wait()
        response = client.post(
            "/api/v1/tickets", {"body": "same"}, format="json", HTTP_IDEMPOTENCY_KEY="race"
        )
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        results.append((response.status_code, response.json(), replayed))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert [status for status, _, _ in results] == [201] * 6
    assert len({body["id"] for _, body, _ in results}) == 1
    assert sorted(replayed for _, _, replayed in results) == [False] + [True] * 5
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
