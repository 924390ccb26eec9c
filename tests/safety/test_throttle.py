"""Rate limits in the real Redis, through the real views; login lockout by django-axes."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import widget_key_create
from apps.safety import throttle
from apps.tickets.models import Message

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"


@pytest.fixture
def widget_key():  # type: ignore[no-untyped-def]
    return widget_key_create(site_name="Shop", allowed_origins=[ORIGIN + "/"])


def _start(client, widget_key, **extra):  # type: ignore[no-untyped-def]
    return client.post(
        f"/widget/api/{widget_key.public_key}/conversations",
        {"body": "Hi, is my order shipped?"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
        **extra,
    )


def test_a_visitor_sending_as_fast_as_it_can_is_refused_with_429_and_retry_after(widget_key):
    # given: a conversation
    client = APIClient()
    started = _start(client, widget_key).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started['visitor_token']}")
    url = f"/widget/api/{widget_key.public_key}/messages"
    # when: the visitor sends 29 more at once
    codes = [
        client.post(url, {"body": f"spam {n}"}, format="json", HTTP_ORIGIN=ORIGIN).status_code
        for n in range(29)
    ]
    # then: the default (12 a minute) lets 12 through, then refuses, in the API's shape
    assert codes.count(201) == 12 and codes[12:] == [429] * 17
    refused = client.post(url, {"body": "one more"}, format="json", HTTP_ORIGIN=ORIGIN)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "12/minute" in refused.json()["error"]["message"]
    assert refused["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read it
    # and nothing refused was stored
    assert Message.objects.filter(body__startswith="spam").count() == 12


def test_one_address_starting_conversations_is_refused_before_its_60th(widget_key):
    client = APIClient()
    codes = [_start(client, widget_key).status_code for _ in range(35)]
    assert codes[:30] == [201] * 30 and set(codes[30:]) == {429}


def test_a_forwarded_for_header_counts_only_from_a_trusted_proxy(widget_key, settings, rf):
    # given: no trusted proxy, a client that claims other addresses
    spoofed = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="198.51.100.7")
    assert throttle.client_ip(spoofed) == "198.51.100.7"
    # when: the request comes through our proxy, which appends what it saw
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxied = rf.get(
        "/", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7, 10.1.2.3", REMOTE_ADDR="10.0.0.2"
    )
    # then: the right-most address our proxies did not add, not the one the client wrote
    assert throttle.client_ip(proxied) == "198.51.100.7"


def test_an_api_key_over_its_limit_gets_429_in_the_api_error_shape(api_key_client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_key": "3/minute"}
    client = api_key_client()
    codes = [client.get("/api/v1/tickets").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/v1/tickets")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    # and another key is served
    assert api_key_client(name="other").get("/api/v1/tickets").status_code == 200


def test_limits_fail_open_with_an_error_logged_when_redis_is_down(widget_key, settings, caplog):
    # given: the limiter pointed at a Redis nobody listens on
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    throttle._limiter.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="apps.safety.throttle"):
            response = _start(APIClient(), widget_key)
    finally:
        throttle._limiter.cache_clear()
    # then: served, and the operator is told
    assert response.status_code == 201
    assert "not checked, serving anyway" in caplog.text


@pytest.fixture
def axes_on(settings):  # type: ignore[no-untyped-def]
    settings.AXES_ENABLED = True


def test_the_login_locks_after_ten_wrong_passwords_and_says_so(axes_on):
    # given
    User.objects.create_superuser("root", "root@example.com", "right-pw-123")
    client = Client()
    # when: ten wrong passwords
    for _ in range(10):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    # then: the right one is refused too, with a message that says why
    response = client.post(
        "/admin/login/", {"username": "root", "password": "right-pw-123", "next": "/admin/"}
    )
    assert response.status_code == 429
    assert "locked" in response.content.decode().lower()
    assert "_auth_user_id" not in client.session
    # and the inbox login is the same lock
    inbox = Client().post("/inbox/login/", {"username": "root", "password": "right-pw-123"})
    assert inbox.status_code == 429


def test_a_right_password_before_the_limit_signs_in_and_resets_the_count(axes_on):
    User.objects.create_superuser("root", "root@example.com", "right-pw-123")
    client = Client()
    for _ in range(9):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    response = client.post(
        "/admin/login/", {"username": "root", "password": "right-pw-123", "next": "/admin/"}
    )
    assert response.status_code == 302


def test_one_sender_flooding_the_email_webhook_is_refused_and_a_repeat_is_still_idempotent(
    api_key_client, settings
):
    from tests.api.test_inbound_email import email, post

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "email_sender": "3/hour"}
    client = api_key_client()
    codes = [post(client, email(f"m{n}@x")).status_code for n in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    # an email already stored is answered as before (a provider's retry costs nothing)
    assert post(client, email("m0@x")).status_code == 200
    assert Message.objects.count() == 3
