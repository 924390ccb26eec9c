"""Draft streams under the real ASGI server (uvicorn on loopback, as `up` serves them): the
first byte at once, each event as it is written, many open streams on one process."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.services import api_key_create
from apps.copilot.models import Draft
from apps.copilot.services import pipeline_run
from apps.copilot.streaming import stream_listeners
from apps.tickets.models import Channel
from tests.conftest import wait_for, web_process
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUESTION = "I forgot my password and the reset email never arrives"


class StreamReader(threading.Thread):
    """Reads one Server-Sent Events response line by line, noting when each line arrived."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers
        self.opened = 0.0
        self.lines: list[tuple[float, str]] = []
        self.status = 0

    def run(self) -> None:
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.opened = time.monotonic()
        client.request("GET", self.path, headers=self.headers)
        response = client.getresponse()
        self.status = response.status
        final = False
        while True:
            line = response.readline()
            if not line:
                break
            self.lines.append((time.monotonic(), line.decode().rstrip("\n")))
            final = final or line.startswith(b"event: final")
            if final and line.startswith(b"data: "):
                break
        client.close()

    def events(self) -> list[tuple[float, str, dict]]:
        """(arrival, type, data) of each event."""
        found, kind = [], ""
        for arrived, line in self.lines:
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((arrived, kind, json.loads(line.removeprefix("data: "))))
        return found


def test_a_draft_streams_event_by_event_under_uvicorn_as_the_model_writes(
    copilot_ready, fake_openai, tmp_path: Path
):
    # given: a model that streams its reply over ~1.5 s, and a client reading the ticket's
    # draft stream through a real web process
    reply = (
        "Hello, you can set a new password yourself: choose Forgot password on the sign-in "
        "page and follow the link in the email. If it does not arrive, check your spam folder."
    )
    fake_openai.reset(
        default=Reply.ok(
            json.dumps({"reply": reply, "citations": ["P1"], "answerable": True}),
            chunk_delay=0.06,
            chunk_chars=8,
        )
    )
    ticket, message = customer_ticket(QUESTION)
    _, key = api_key_create(name="stream", scopes=["read"])
    with web_process(tmp_path / "web.log") as (_, port):
        # Measured on a warm process: while its background warm-up loads the models, a
        # request competes with it for the one interpreter (seconds, once per process).
        wait_for(lambda: "web process ready" in (tmp_path / "web.log").read_text(), timeout=60)
        reader = StreamReader(
            port,
            f"/api/v1/tickets/{ticket.id}/draft/stream",
            {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
        )
        reader.start()
        wait_for(lambda: stream_listeners(ticket_id=ticket.id) == 1, timeout=10)
        # then: the stream opened at once, before any draft exists
        first_byte = reader.lines[0][0] - reader.opened
        assert reader.status == 200 and reader.lines[0][1] == ": stream open"
        assert first_byte < 1.0
        # when: the pipeline drafts (here, in this process: it publishes as a worker would)
        draft = pipeline_run(message_id=message.id)
        reader.join(15)
    # then: the deltas reached the client while the model was writing, spread out in time,
    # and well before the final event
    events = reader.events()
    deltas = [(arrived, data) for arrived, kind, data in events if kind == "delta"]
    final_at = next(arrived for arrived, kind, _ in events if kind == "final")
    assert draft.streamed and "".join(data["text"] for _, data in deltas) == reply
    assert len(deltas) >= 5
    assert final_at - deltas[0][0] > 0.8
    assert deltas[-1][0] - deltas[0][0] > 0.8
    assert len({round(arrived, 1) for arrived, _ in deltas}) >= 5


def ping(port: int, key: str) -> None:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    client.request("GET", "/api/v1/ping", headers={"Authorization": f"Bearer {key}"})
    assert client.getresponse().status == 200


def test_two_hundred_open_streams_hold_no_thread_or_database_connection_each(
    copilot_ready, tmp_path: Path
):
    # given: a ticket and a web process
    ticket, _ = customer_ticket(QUESTION, channel=Channel.API)
    _, key = api_key_create(name="streams", scopes=["read"])
    request = (
        f"GET /api/v1/tickets/{ticket.id}/draft/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()

    def database_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    with web_process(tmp_path / "web.log") as (process, port):
        web = psutil.Process(process.pid)
        ping(port, key)  # the process has served a request that used the database
        threads_before, connections_before = web.num_threads(), database_connections()
        sockets = []
        try:
            # when: 200 clients open the stream and wait
            for _ in range(200):
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                client.sendall(request)
                sockets.append(client)
            for client in sockets:
                assert client.recv(4096).startswith(b"HTTP/1.1 200")
            wait_for(lambda: stream_listeners(ticket_id=ticket.id) == 200, timeout=30)
            # then: the process still answers at once, and the open streams hold no thread
            # and no database connection each: the burst of 200 requests grew the web
            # process's pool, never past its size
            started = time.monotonic()
            ping(port, key)
            assert time.monotonic() - started < 2.0
            assert web.num_threads() - threads_before < 20
            pool_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
            assert database_connections() - connections_before <= pool_size
        finally:
            for client in sockets:
                client.close()
        # and: a client that goes away frees its subscription at once
        wait_for(lambda: stream_listeners(ticket_id=ticket.id) == 0, timeout=10)
    assert not Draft.objects.filter(ticket=ticket).exists()
