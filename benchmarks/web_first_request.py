"""A fresh web process's first `POST /api/v1/triage/classify`, with and without WEB_WARM.

    .venv/bin/python benchmarks/web_first_request.py [--rounds 3] [--idle 10]

The demo's classifier is trained into a throwaway database; then, alternating, a uvicorn
process (config.asgi, as `up` and the image run it) is started with WEB_WARM on or off, and
once it answers `GET /api/v1/ping` and `--idle` seconds have passed (a process that has been
up a moment, as behind a load balancer), one classify request is timed, then a second one
(the steady state, the baseline). Also timed: a classify request sent as soon as the process
answers (a request that arrives while the warm-up is still loading).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intake_api import free_port
from knowledge_bench_db import BASE_DIR, database_setup

LOG = BASE_DIR / ".deskpilot" / "bench" / "web_first_request.log"


def post_ms(port: int, key: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/triage/classify",
        data=json.dumps({"texts": ["my card has not arrived yet"]}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (http:)
        body = json.load(response)
    assert body["results"][0]["classifier_version_id"], body
    return (time.perf_counter() - started) * 1000


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def one_process(warm: bool, key: str, idle: float) -> tuple[float, float, float]:
    """(first request after idle, second request, first request at once) in ms."""
    figures = []
    for wait in (idle, 0.0):
        port = free_port()
        log = open(LOG, "w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)],
            cwd=BASE_DIR,
            env=dict(
                os.environ,
                WEB_WARM="true" if warm else "false",
                DESKPILOT_HTTPS="false",
                LOG_LEVEL="WARNING",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not answers(port):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the web process failed:\n{LOG.read_text()[-2000:]}")
                time.sleep(0.05)
            time.sleep(wait)
            figures.append(post_ms(port, key))
            if wait:
                figures.append(post_ms(port, key))
        finally:
            process.terminate()
            process.wait(20)
            log.close()
    return figures[0], figures[1], figures[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    arguments = parser.parse_args()
    database_setup("web_first_request", redis=True)
    from apps.accounts.services import api_key_create
    from apps.triage.services import classifier_train_from_csv

    classifier_train_from_csv(path=BASE_DIR / "fixtures/demo/triage/train.csv", activate=True)
    _, key = api_key_create(name="bench", scopes=["read"])
    results: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for _ in range(arguments.rounds):
        for warm in (True, False):
            results[warm].append(one_process(warm, key, arguments.idle))
    print(f"first classify request of a fresh web process, {arguments.rounds} processes each, ms")
    for warm in (True, False):
        first, second, at_once = zip(*results[warm], strict=True)
        print(
            f"  WEB_WARM={'on ' if warm else 'off'}  after {arguments.idle:.0f} s idle: first "
            f"median {statistics.median(first):7.0f} (max {max(first):6.0f}), second median "
            f"{statistics.median(second):5.0f};  sent as soon as it answers: median "
            f"{statistics.median(at_once):6.0f}"
        )
    on = statistics.median(r[0] for r in results[True])
    off = statistics.median(r[0] for r in results[False])
    print(f"  first request after idle, off / on: x{off / on:.1f}")


if __name__ == "__main__":
    main()
