"""Intake benchmark: POST /api/v1/tickets under concurrent load, next to GET /api/v1/ping.

Starts the app under uvicorn on 127.0.0.1 (a child process) against the embedded PostgreSQL
and Redis under .deskpilot/bench (or DATABASE_URL / REDIS_URL when set), then drives load
from this process with threads (one HTTP connection each): first the trivial DRF endpoint
(the baseline), then ticket creation. Bounded by a request count and a time limit per phase.
Prints accepted/s, p50/p95 latency for both and the ratios.

    .venv/bin/python benchmarks/intake_api.py [--requests 1000] [--concurrency 8]
        [--seconds 30] [--web-workers 1]

No Celery worker runs: each ticket's pipeline task is published to Redis and waits there,
as it would behind a busy worker; the embedded Redis is flushed at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from percentiles import percentile  # noqa: E402

from apps.core.embedded import EmbeddedRedis, services_start  # noqa: E402


@dataclass
class PhaseResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: dict[int | str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def accepted_per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000

    def line(self) -> str:
        failures = ", ".join(f"{code}x{n}" for code, n in self.failures.items()) or "none"
        return (
            f"{self.name:<22} {len(self.latencies):>6} ok  {self.accepted_per_second:>8.1f}/s  "
            f"p50 {self.percentile(0.50):>7.1f} ms  p95 {self.percentile(0.95):>7.1f} ms  "
            f"failures: {failures}"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_phase(
    name: str,
    *,
    base_url: str,
    method: str,
    path: str,
    key: str,
    requests: int,
    concurrency: int,
    seconds: float,
    expected_status: int,
) -> PhaseResult:
    result = PhaseResult(name)
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            counter = 0
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                counter += 1
                payload = None
                if method == "POST":
                    payload = {
                        "customer": {"email": f"bench-{index}-{counter % 50}@example.com"},
                        "subject": "Where is my order?",
                        "body": f"Order {uuid.uuid4().hex[:8]} has not arrived. " * 5,
                    }
                started = time.perf_counter()
                try:
                    response = client.request(method, path, json=payload)
                    status: int | str = response.status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                latency = time.perf_counter() - started
                with lock:
                    if status == expected_status:
                        result.latencies.append(latency)
                    else:
                        result.failures[status] = result.failures.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    parser.add_argument("--web-workers", type=int, default=1)
    options = parser.parse_args()

    home = Path(os.environ.get("DESKPILOT_HOME", BASE_DIR / ".deskpilot")).resolve() / "bench"
    started_services = services_start(home)
    env = dict(os.environ)
    env.update(
        DESKPILOT_HOME=str(home),
        DJANGO_SETTINGS_MODULE="config.settings",
        DESKPILOT_HTTPS="false",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
    )
    # Django under ASGI runs each request's sync code in a fresh thread, and a persistent
    # connection (CONN_MAX_AGE > 0) stays open with its thread: under load PostgreSQL runs out
    # of connections ("too many clients"). Django's advice for ASGI is CONN_MAX_AGE=0 (or a
    # pool). Override with DATABASE_CONN_MAX_AGE=60 to see the foundation default fail.
    env.setdefault("DATABASE_CONN_MAX_AGE", "0")
    python = sys.executable
    manage = [python, str(BASE_DIR / "manage.py")]
    web: subprocess.Popen | None = None
    try:
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=BASE_DIR, check=True)
        key = subprocess.run(
            [*manage, "apikey_create", f"bench-{uuid.uuid4().hex[:6]}"],
            env=env,
            cwd=BASE_DIR,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        web = subprocess.Popen(
            [
                python,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(options.web_workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=BASE_DIR,
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or web.poll() is not None:
                raise SystemExit("uvicorn did not start")
            time.sleep(0.2)

        common = {
            "base_url": base_url,
            "key": key,
            "concurrency": options.concurrency,
            "seconds": options.seconds,
        }
        # Warm both paths (imports, connections) before measuring.
        run_phase(
            "warm-up", method="GET", path="/api/v1/ping", requests=50, expected_status=200, **common
        )
        run_phase(
            "warm-up",
            method="POST",
            path="/api/v1/tickets",
            requests=50,
            expected_status=201,
            **common,
        )
        ping = run_phase(
            "GET  /api/v1/ping",
            method="GET",
            path="/api/v1/ping",
            requests=options.requests,
            expected_status=200,
            **common,
        )
        tickets = run_phase(
            "POST /api/v1/tickets",
            method="POST",
            path="/api/v1/tickets",
            requests=options.requests,
            expected_status=201,
            **common,
        )
        print(
            f"intake benchmark: uvicorn x{options.web_workers} on 127.0.0.1, "
            f"{options.concurrency} concurrent clients, ≤{options.requests} requests "
            f"or ≤{options.seconds:.0f} s per phase, "
            f"DATABASE_CONN_MAX_AGE={env['DATABASE_CONN_MAX_AGE']}"
        )
        print(ping.line())
        print(tickets.line())
        print(
            "ratio tickets/ping: throughput "
            f"{tickets.accepted_per_second / ping.accepted_per_second:.2f}x, "
            f"p50 {tickets.percentile(0.5) / ping.percentile(0.5):.2f}x, "
            f"p95 {tickets.percentile(0.95) / ping.percentile(0.95):.2f}x"
        )
        if tickets.latencies:
            print(f"(mean POST latency {statistics.mean(tickets.latencies) * 1000:.1f} ms)")
        return 0 if not tickets.failures and not ping.failures else 1
    finally:
        if web is not None:
            web.terminate()
            try:
                web.wait(15)
            except subprocess.TimeoutExpired:
                web.kill()
        for service in started_services:
            if isinstance(service, EmbeddedRedis):
                import redis as redis_client

                redis_client.Redis.from_url(service.url).flushall()
            service.stop()


if __name__ == "__main__":
    raise SystemExit(main())
