import json

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_dependencies(client):
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_stays_ready_but_degraded_when_no_worker_runs(client):
    # given: real database and Redis, no worker process
    # when
    response = client.get("/readyz")
    # then: the web can still take messages in (they wait for a worker), so it stays ready
    body = json.loads(response.content)
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["down"] == ["celery_worker"]
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["pgvector"]["detail"].startswith("ok (pgvector 0.")
    assert body["components"]["redis"]["ok"] is True


def test_readyz_reports_missing_pgvector_extension(client, django_db_blocker):
    # given: the extension dropped inside this test's transaction
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION vector CASCADE")
    # when
    response = client.get("/readyz")
    # then
    body = response.json()
    assert response.status_code == 503
    assert "pgvector" in body["down"]
    assert "vector extension is not installed" in body["components"]["pgvector"]["detail"]


def test_readyz_reports_redis_down_and_stays_ready_for_intake(client, settings):
    # given: a Redis URL where nothing listens
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    # when
    response = client.get("/readyz")
    # then: messages are still stored (the sweep schedules them once Redis is back)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert "redis" in body["down"]
    assert body["components"]["database"]["ok"] is True


def test_probes_answer_whatever_the_host_header_and_without_https_redirect(client, settings):
    # given: production-like host and HTTPS settings; an orchestrator probing by pod IP
    settings.ALLOWED_HOSTS = ["support.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    # when
    alive = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    other = client.get("/api/schema/", HTTP_HOST="10.1.2.3:8000")
    # then
    assert alive.status_code == 200
    assert other.status_code == 400  # everything else still checks the host


def test_readyz_hides_error_texts_unless_details_are_on(client, settings):
    # given
    settings.HEALTH_DETAILS = False
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"
    # when
    body = client.get("/readyz").json()
    # then
    assert "redis" in body["down"]
    assert body["components"]["redis"]["detail"] == "down (details in the log)"
    assert "127.0.0.1" not in str(body)


def test_the_bare_address_leads_to_the_inbox(client):
    # when
    response = client.get("/")
    # then
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
