"""A Redis that hangs (stopped with SIGSTOP: it neither answers nor refuses) must not freeze
intake: a real web process keeps storing customers' messages at once, their tasks left for
the sweep, and /readyz answers within its probe's timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import httpx
import pytest

from apps.accounts.services import api_key_create, widget_key_create
from apps.core.embedded import EmbeddedRedis
from apps.tickets.models import Message, PipelineStatus
from tests.conftest import web_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ORIGIN = "https://shop.example.com"


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_intake_answers_at_once_while_redis_hangs_and_readyz_answers_in_time(tmp_path):
    # given: a web process on a Redis of its own, an API key and a widget key
    redis_server = EmbeddedRedis(tmp_path / "redis-home")
    redis_url = redis_server.start()
    assert redis_server.process is not None
    _, key = api_key_create(name="hang", scopes=["read", "write"])
    widget = widget_key_create(site_name="Shop", allowed_origins=[ORIGIN])
    try:
        with (
            web_process(tmp_path / "web.log", REDIS_URL=redis_url, WEB_WARM="false") as (_, port),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            api = {"Authorization": f"Bearer {key}"}
            first = client.post(
                "/api/v1/tickets",
                json={"customer": {"email": "before@example.com"}, "body": "Where is my card?"},
                headers=api,
            )
            assert first.status_code == 201, first.text
            # when: Redis stops answering
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            try:
                api_posts = [
                    _timed(
                        lambda n=n: client.post(
                            "/api/v1/tickets",
                            json={
                                "customer": {"email": f"during{n}@example.com"},
                                "body": "My card payment was declined twice today",
                            },
                            headers=api,
                        )
                    )
                    for n in range(3)
                ]
                widget_post = _timed(
                    lambda: client.post(
                        f"/widget/api/{widget.public_key}/conversations",
                        json={"body": "Is my order shipped?"},
                        headers={"Origin": ORIGIN},
                    )
                )
                ready, ready_seconds = _timed(lambda: client.get("/readyz"))
            finally:
                os.kill(redis_server.process.pid, signal.SIGCONT)
    finally:
        with contextlib.suppress(Exception):
            redis_server.process.kill()
    # then: every customer was answered, the first within about a second (its publish and
    # rate-limit check wait out their short timeouts), the next ones at once (the process
    # stopped trying Redis for a few seconds); their messages stored
    seconds = [round(s, 2) for _, s in [*api_posts, widget_post]]
    assert all(response.status_code == 201 for response, _ in [*api_posts, widget_post])
    # (bounds with room for a loaded machine: before, a POST waited out the whole stop)
    assert seconds[0] < 2.0, seconds
    assert max(seconds[1:]) < 1.0, seconds
    stored = Message.objects.filter(ticket_id__in=[r.json()["id"] for r, _ in api_posts])
    assert stored.count() == 3
    # their tasks are left for the sweep, which publishes them once Redis is back
    assert set(stored.values_list("pipeline_status", flat=True)) == {PipelineStatus.UNSCHEDULED}
    # and the probe answered before a usual probe timeout, still ready for intake, naming Redis
    assert ready_seconds < 3.5
    assert ready.status_code == 200
    assert "redis" in ready.json()["down"]
