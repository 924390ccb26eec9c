"""Draft streams under the real ASGI server: time to the stream's first byte, and when the
model's words reach the client.

    .venv/bin/python benchmarks/stream_latency.py [--runs 20] [--tokens-per-second 50]

A throwaway database (the demo's knowledge base and classifier), a fake OpenAI-compatible
model in its own process streaming its reply at `--tokens-per-second` (a token ~4
characters), and a real web process (uvicorn serving config.asgi, as `up` does). For each
run: a widget conversation is started through HTTP, a client opens its conversation stream
(`GET /widget/api/{key}/stream`) and the API's draft stream of the same ticket, and the
pipeline drafts the message (in this process, publishing to Redis as a worker does).
Printed, p50/p95 over the runs:

- time to first byte: request sent → the stream's opening comment;
- first delta: pipeline start → the first piece of the reply at the client, beside the
  model's own time to its first token (from its request's arrival);
- spread: first delta → last delta at the client, beside the model's streaming time; a
  stream that is collected and sent at the end has a spread of ~0;
- `POST /api/v1/tickets/{id}/draft/regenerate` → 202, with the model taking 3 s a call.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from copilot_pipeline import fernhill_setup, services_start
from percentiles import percentile

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "I forgot my password and the reset email never arrives"
REPLY = (
    "Hello, you can set a new password yourself: on the sign-in page choose Forgot "
    "password, enter your account's email address and follow the link we send within a few "
    "minutes. The link works once and expires after an hour. If it does not arrive, check "
    "your spam folder or ask for a new one."
)


class Reader(threading.Thread):
    """One Server-Sent Events client: when each event arrived."""

    def __init__(self, port: int, path: str, headers: dict[str, str], done: str) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers, self.done = port, path, headers, done
        self.sent = 0.0
        self.first_byte = 0.0
        self.events: list[tuple[float, str]] = []

    def run(self) -> None:
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.sent = time.monotonic()
        client.request("GET", self.path, headers=self.headers)
        response = client.getresponse()
        while line := response.readline():
            now = time.monotonic()
            if not self.first_byte:
                self.first_byte = now
            if line.startswith(b"event: "):
                kind = line.decode().strip().removeprefix("event: ")
                self.events.append((now, kind))
                if kind in self.done.split(","):
                    break
        client.close()


def web_start(port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ, WEB_WARM="true", DESKPILOT_HTTPS="false"),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    sys.exit(f"the web process did not start: {log}")


def post(port: int, path: str, body: dict, headers: dict[str, str]) -> dict:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    client.request("POST", path, json.dumps(body), {**headers, "Content-Type": "application/json"})
    return json.loads(client.getresponse().read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    arguments = parser.parse_args()
    services_start("stream_latency")
    fernhill_setup()
    from django.conf import settings

    from apps.accounts.services import api_key_create, widget_key_create
    from apps.copilot.models import CopilotPolicy
    from apps.copilot.services import pipeline_run
    from apps.copilot.streaming import stream_listeners
    from apps.llm.deployments import Deployment
    from apps.llm.router import router_reset
    from apps.tickets.models import Message
    from tests.conftest import free_port
    from tests.llm.fake_openai import Reply, ServerProcess

    CopilotPolicy.objects.update_or_create(singleton=True, defaults={"cache_enabled": False})
    # The database is new, its ticket ids start again at 1: an earlier run's draft events,
    # still in Redis for a few minutes, would be replayed to this run's readers.
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    for key in redis_client.scan_iter("deskpilot:draft-stream:*"):
        redis_client.delete(key)
    model = ServerProcess()
    answer = json.dumps({"reply": REPLY, "citations": ["P1"], "answerable": True})
    model.reset(
        default=Reply.ok(answer, chunk_chars=4, chunk_delay=1 / arguments.tokens_per_second)
    )
    os.environ["FAKE_OPENAI_KEY"] = "sk-fake"
    deployment = Deployment(
        model="openai/gpt-4o-mini", api_base=model.base_url, api_key_env="FAKE_OPENAI_KEY"
    )
    settings.LLM_DEPLOYMENTS = {alias: (deployment,) for alias in settings.LLM_DEPLOYMENTS}
    router_reset()
    origin = "https://shop.example"
    widget = widget_key_create(site_name="bench", allowed_origins=[origin])
    _, api_key = api_key_create(name="bench", scopes=["read", "write"])
    port = free_port()
    log = Path(os.environ["DESKPILOT_HOME"]) / "stream_latency_web.log"
    web = web_start(port, log)
    first_bytes, first_deltas, spreads, model_spans, regenerates = [], [], [], [], []
    try:
        for run in range(arguments.runs + 1):  # the first run warms up and is not counted
            started = post(
                port,
                f"/widget/api/{widget.public_key}/conversations",
                {"body": QUESTION},
                {"Origin": origin},
            )
            ticket_id = started["conversation_id"]
            customer = Reader(
                port,
                f"/widget/api/{widget.public_key}/stream",
                {"Origin": origin, "Authorization": f"Bearer {started['visitor_token']}"},
                done="message,handed_off,needs_review",
            )
            agent = Reader(
                port,
                f"/api/v1/tickets/{ticket_id}/draft/stream",
                {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"},
                done="final",
            )
            customer.start()
            agent.start()
            deadline = time.monotonic() + 10
            while stream_listeners(ticket_id=ticket_id) < 2:
                if time.monotonic() > deadline:
                    sys.exit(
                        f"the streams did not subscribe (see {log}): {customer.events} "
                        f"{agent.events} {stream_listeners(ticket_id=ticket_id)}"
                    )
                time.sleep(0.01)
            began = time.monotonic()
            pipeline_run(message_id=Message.objects.get(ticket_id=ticket_id).pk)
            customer.join(30)
            agent.join(30)
            if run == 0:
                continue
            answer_seconds = model.answer_seconds()[-1]
            deltas = [at for at, kind in agent.events if kind == "delta"]
            first_bytes += [1000 * (r.first_byte - r.sent) for r in (customer, agent)]
            first_deltas.append(1000 * (deltas[0] - began))
            spreads.append(1000 * (deltas[-1] - deltas[0]))
            model_spans.append(1000 * answer_seconds)
        # Regenerate through the web process while the model is slow (it is never called
        # in the request: the task waits in the queue, as no worker runs here).
        model.reset(default=Reply.ok(answer, delay=3.0))
        for _ in range(arguments.runs):
            started_at = time.monotonic()
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            client.request(
                "POST",
                f"/api/v1/tickets/{ticket_id}/draft/regenerate",
                headers={"Authorization": f"Bearer {api_key}"},
            )
            response = client.getresponse()
            response.read()
            if response.status != 202:
                sys.exit(f"regenerate answered {response.status}")
            regenerates.append(1000 * (time.monotonic() - started_at))
    finally:
        web.terminate()
        web.wait(20)
        model.stop()

    def line(label: str, values: list[float]) -> None:
        print(
            f"  {label:58s} p50 {statistics.median(values):8.1f} ms  "
            f"p95 {percentile(values, 0.95):8.1f} ms  (n={len(values)})"
        )

    print(
        f"\nuvicorn, widget + API draft streams, model streaming ~{arguments.tokens_per_second:g} "
        f"tokens/s ({len(REPLY)} characters of reply), {arguments.runs} runs:"
    )
    line("time to first byte (request sent -> stream open)", first_bytes)
    line("first delta at the client (pipeline start -> delta)", first_deltas)
    line("deltas' spread at the client (first -> last delta)", spreads)
    line("the model's own time (request arrival -> last byte)", model_spans)
    line("POST .../draft/regenerate -> 202 (model taking 3 s a call)", regenerates)


if __name__ == "__main__":
    main()
