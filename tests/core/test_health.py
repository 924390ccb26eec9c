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


def test_readyz_names_celery_worker_as_down_when_no_worker_runs(client):
    # given: real database and Redis, no worker process
    # when
    response = client.get("/readyz")
    # then
    body = json.loads(response.content)
    assert response.status_code == 503
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


def test_readyz_reports_redis_down(client, settings):
    # given: a Redis URL where nothing listens
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    # when
    response = client.get("/readyz")
    # then
    body = response.json()
    assert response.status_code == 503
    assert "redis" in body["down"]
    assert body["components"]["database"]["ok"] is True
