import pytest

from apps.tickets.models import Customer, Message, PipelineStatus, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int, int]:
    return (
        Customer.objects.count(),
        Ticket.objects.count(),
        Message.objects.count(),
        TicketEvent.objects.count(),
    )


def test_post_ticket_creates_ticket_customer_and_first_message(api_key_client):
    # given
    client = api_key_client()
    # when
    response = client.post(
        "/api/v1/tickets",
        {
            "customer": {"email": "Ada@Example.com", "name": "Ada", "external_id": "crm-1"},
            "subject": "Refund",
            "body": "I want my money back.",
        },
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    ticket = Ticket.objects.get(pk=body["id"])
    message = Message.objects.get(pk=body["message_id"])
    assert body["status"] == "new"
    assert body["channel"] == "api"
    assert ticket.customer.email == "ada@example.com"
    assert ticket.customer.external_id == "crm-1"
    assert ticket.subject == "Refund"
    assert message.ticket_id == ticket.pk
    assert message.author_kind == "customer"
    assert message.body == "I want my money back."
    assert list(ticket.events.values_list("kind", "to_status", "actor_kind")) == [
        ("created", "new", "api_key")
    ]


def test_same_customer_is_found_by_external_id_then_email(api_key_client):
    # given
    client = api_key_client()
    first = client.post(
        "/api/v1/tickets",
        {"customer": {"email": "bo@example.com", "external_id": "x1"}, "body": "one"},
        format="json",
    ).json()
    # when
    by_id = client.post(
        "/api/v1/tickets", {"customer": {"external_id": "x1"}, "body": "two"}, format="json"
    ).json()
    by_email = client.post(
        "/api/v1/tickets", {"customer": {"email": "BO@example.com"}, "body": "three"}, format="json"
    ).json()
    # then
    assert first["customer_id"] == by_id["customer_id"] == by_email["customer_id"]
    assert Customer.objects.count() == 1


def test_ticket_without_customer_details_gets_an_anonymous_customer(api_key_client):
    # when
    response = api_key_client().post("/api/v1/tickets", {"body": "hello"}, format="json")
    # then
    assert response.status_code == 201
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert (ticket.customer.email, ticket.customer.external_id) == ("", "")
    assert ticket.subject == "hello"


def test_email_of_another_customer_with_other_external_id_is_a_conflict(api_key_client):
    # given
    client = api_key_client()
    client.post(
        "/api/v1/tickets",
        {"customer": {"email": "c@example.com", "external_id": "a"}, "body": "x"},
        format="json",
    )
    before = counts()
    # when
    response = client.post(
        "/api/v1/tickets",
        {"customer": {"email": "c@example.com", "external_id": "b"}, "body": "y"},
        format="json",
    )
    # then
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {
        "customer.email": [
            "customer.email 'c@example.com' belongs to a customer with another external_id"
        ]
    }
    assert counts() == before


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "body", "This field is required."),
        ({"body": ""}, "body", "This field may not be blank."),
        ({"body": "   \n"}, "body", "body must not be empty"),
        ({"body": 42}, "body", "must be a string, not a number"),
        ({"body": None}, "body", "This field may not be null."),
        ({"body": ["a"]}, "body", "must be a string, not an array"),
        (
            {"body": "x", "colour": "red"},
            "colour",
            "unknown field; allowed fields are: body, channel, customer, priority, subject",
        ),
        (
            {"body": "x", "customer": {"nickname": "z"}},
            "customer.nickname",
            "unknown field; allowed fields are: email, external_id, name",
        ),
        (
            {"body": "x", "customer": {"email": "not-an-email"}},
            "customer.email",
            "Enter a valid email address.",
        ),
        (
            {"body": "x", "customer": {"email": 5}},
            "customer.email",
            "must be a string, not a number",
        ),
        (
            {"body": "x", "customer": "ada"},
            "customer.non_field_errors",
            "Invalid data. Expected a dictionary, but got str.",
        ),
        ({"body": "x", "channel": "fax"}, "channel", '"fax" is not a valid choice.'),
        ({"body": "x", "subject": True}, "subject", "must be a string, not a boolean"),
        ({"body": "a\x00b"}, "body", "body must not contain NUL characters"),
    ],
)
def test_invalid_ticket_input_is_refused_naming_the_field(api_key_client, payload, field, message):
    # given
    client = api_key_client()
    before = counts()
    # when
    response = client.post("/api/v1/tickets", payload, format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"][field] == [message]
    assert error["message"] == f"{field}: {message}"
    assert counts() == before


def test_body_over_the_cap_is_refused(api_key_client, settings):
    # given
    settings.MESSAGE_MAX_CHARS = 100
    client = api_key_client()
    before = counts()
    # when
    response = client.post("/api/v1/tickets", {"body": "x" * 101}, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["body"] == [
        "body is 101 characters long; the limit is 100"
    ]
    assert counts() == before


def test_body_at_the_cap_is_accepted(api_key_client, settings):
    # given
    settings.MESSAGE_MAX_CHARS = 100
    # when
    response = api_key_client().post("/api/v1/tickets", {"body": "é" * 100}, format="json")
    # then
    assert response.status_code == 201


def test_default_body_cap_is_twenty_thousand_characters(api_key_client):
    # given
    client = api_key_client()
    # when
    accepted = client.post("/api/v1/tickets", {"body": "x" * 20_000}, format="json")
    refused = client.post("/api/v1/tickets", {"body": "x" * 20_001}, format="json")
    # then
    assert accepted.status_code == 201
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "message_start"),
    [
        (b'{"body": "x",', "application/json", 400, "the request body is not valid JSON: "),
        (b'{"body": "\xff\xfe"}', "application/json", 400, "the request body is not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "application/json", 400, "the request body is not UTF-8"),
        (b'{"body": NaN}', "application/json", 400, "the request body is not valid JSON: NaN"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "the request body is"),
        (b'["body"]', "application/json", 400, "non_field_errors: Invalid data."),
        (b"body=x", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
    ],
)
def test_malformed_payload_is_refused_with_a_message(
    api_key_client, raw, content_type, status, message_start
):
    # given
    client = api_key_client()
    before = counts()
    # when
    response = client.generic("POST", "/api/v1/tickets", raw, content_type=content_type)
    # then
    assert response.status_code == status
    assert response.json()["error"]["message"].startswith(message_start)
    assert counts() == before


def test_oversized_request_body_is_refused_with_413(api_key_client, settings):
    # given
    settings.MESSAGE_MAX_CHARS = 10
    client = api_key_client()
    before = counts()
    raw = b'{"body": "' + b"x" * 200_000 + b'"}'
    # when
    response = client.generic("POST", "/api/v1/tickets", raw, content_type="application/json")
    # then
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert counts() == before


def test_a_content_length_that_is_not_a_number_is_not_a_500(api_key_client):
    # given: a superscript digit, which str.isdigit() accepts and int() refuses
    client = api_key_client()
    # when
    response = client.generic(
        "POST",
        "/api/v1/tickets",
        b'{"body": "hello"}',
        content_type="application/json",
        CONTENT_LENGTH="\u00b3",
    )
    # then: Django reads no body for a length it cannot parse: a clear 400, nothing stored
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "body: This field is required."
    assert counts() == (0, 0, 0, 0)


def test_read_only_key_cannot_create_a_ticket(api_key_client):
    # given
    client = api_key_client(scopes=("read",))
    # when
    response = client.post("/api/v1/tickets", {"body": "x"}, format="json")
    # then
    assert response.status_code == 403
    assert counts() == (0, 0, 0, 0)


def test_get_ticket_returns_its_messages_and_status(api_key_client):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "first"}, format="json").json()
    client.post(f"/api/v1/tickets/{created['id']}/messages", {"body": "second"}, format="json")
    # when
    response = client.get(f"/api/v1/tickets/{created['id']}")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "new"
    assert [m["body"] for m in body["messages"]] == ["first", "second"]
    assert body["messages"][0]["pipeline_status"] in {s.value for s in PipelineStatus}


def test_a_format_query_parameter_is_ignored_not_a_bare_404(api_key_client):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "first"}, format="json").json()
    # when
    found = client.get(f"/api/v1/tickets/{created['id']}?format=AAA")
    missing = client.get("/api/v1/tickets/0/draft/stream?format=AAA")
    # then
    assert found.status_code == 200
    assert found.json()["id"] == created["id"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "ticket_id", ["999999", "abc", "0", "-1", "99999999999999999999999", "\u00b3", "1\u2460"]
)
def test_unknown_ticket_is_a_json_404(api_key_client, ticket_id):
    # given: ids that are not ones, including digits int() refuses (superscript, circled)
    client = api_key_client()
    # when
    read = client.get(f"/api/v1/tickets/{ticket_id}")
    write = client.post(f"/api/v1/tickets/{ticket_id}/messages", {"body": "x"}, format="json")
    regenerate = client.post(f"/api/v1/tickets/{ticket_id}/draft/regenerate")
    # then
    assert read.status_code == write.status_code == regenerate.status_code == 404
    assert read.json()["error"]["code"] == "not_found"
    assert write.json()["error"]["fields"] == {"ticket_id": [write.json()["error"]["message"]]}
    assert counts() == (0, 0, 0, 0)


def test_post_message_adds_a_customer_message_and_answers_the_ticket_status(api_key_client):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "first"}, format="json").json()
    # when
    response = client.post(
        f"/api/v1/tickets/{created['id']}/messages", {"body": "more details"}, format="json"
    )
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["author_kind"] == "customer"
    assert body["ticket_id"] == created["id"]
    assert body["ticket_status"] == "new"
    assert Message.objects.filter(ticket_id=created["id"]).count() == 2


def test_agent_message_through_api_moves_ticket_to_awaiting_customer(api_key_client):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "first"}, format="json").json()
    # when
    response = client.post(
        f"/api/v1/tickets/{created['id']}/messages",
        {"body": "Here is how.", "author_kind": "agent"},
        format="json",
    )
    # then
    assert response.status_code == 201
    assert response.json()["ticket_status"] == "awaiting_customer"
    assert response.json()["pipeline_status"] == "not_applicable"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "x", "author_kind": "copilot"}, "author_kind"),
        ({"body": "x", "ticket": 1}, "ticket"),
        ({"text": "x"}, "text"),
    ],
)
def test_invalid_message_input_is_refused(api_key_client, payload, field):
    # given
    client = api_key_client()
    created = client.post("/api/v1/tickets", {"body": "first"}, format="json").json()
    before = counts()
    # when
    response = client.post(f"/api/v1/tickets/{created['id']}/messages", payload, format="json")
    # then
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert counts() == before


def test_a_database_that_is_away_is_a_503_with_retry_after_not_a_500(api_key_client, monkeypatch):
    # given: the database stops answering mid-request (a restart: the pool has no connection)
    from django.db import OperationalError

    client = api_key_client()

    def away(**_kwargs: object) -> None:
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr("apps.api.views.tickets.ticket_create", away)
    # when
    response = client.post("/api/v1/tickets", {"body": "hello"}, format="json")
    # then: the client is told to retry, with the same Idempotency-Key
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
    assert "same Idempotency-Key" in response.json()["error"]["message"]
