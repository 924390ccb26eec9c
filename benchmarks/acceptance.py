"""Issues 5 and 6's checks as an outsider runs them: a fresh instance started with
`manage.py up`, a help center imported with `manage.py kb_import`, the classifier trained with
`manage.py triage_train --activate`, then only HTTP: held-out customer questions classified
through `POST /api/v1/triage/classify`, searched through `GET /api/v1/knowledge/search`
(issue 30's check), and posted as tickets through `POST /api/v1/tickets`,
their drafts read back from `GET /api/v1/tickets/{id}` once the Celery worker has run the
pipeline. With `--operations` (issue 31's check), a webhook receiver in this process is
subscribed to ticket.created and draft.ready through the API before the tickets are posted;
afterwards `/metrics` (with its token) must parse, its stage histogram count must equal the
drafts written and its decisions add up to them, and the receiver must have both events for
every ticket with a signature that verifies.

    .venv/bin/python benchmarks/acceptance.py [--dataset birch|bank] [--train-first] [--keep]

The help center and the held-out questions are `copilot_pipeline.py`'s (fixtures/<dataset>/kb;
4 Banking77 questions per intent held out by the same hash; the expected article from
fixtures/<dataset>/intent_articles.csv, "" for an intent the help center does not answer, where
the right outcome is a handoff). The classifier is trained on the rest of Banking77's training
split (../shared/data/banking77/train.csv or $BANKING77_CSV). Nothing is loaded in this
process: it is the client. The instance lives under .deskpilot/acceptance-<dataset> (removed at
the end unless --keep) with its own embedded PostgreSQL and Redis, on a free port.

Prints: training time; triage accuracy, ECE and precision at confidence >= 0.9 on the
held-out questions (308: a small sample, see triage_banking77.py for the 20% slice); the
share of tickets auto-sent, the precision of those (first citation = expected article), the
decisions and reasons of the others, and how long the worker took per ticket.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from copilot_pipeline import BANKING77_HELP_CENTERS, bank_split, percentile  # noqa: E402

from apps.core.embedded import die_with_parent  # noqa: E402  (no Django)
from apps.triage.metrics import expected_calibration_error  # noqa: E402  (numpy only)

READY_TIMEOUT = 300.0
DRAFTS_TIMEOUT = 1200.0
CLASSIFY_BATCH = 256


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Instance:
    """`manage.py up` in a fresh home; management commands against its database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "DESKPILOT_DEMO")
        }
        self.env.update(DESKPILOT_HOME=str(home), DESKPILOT_HTTPS="false", LOG_LEVEL="WARNING")
        self.process: subprocess.Popen | None = None

    def start(self, *, fresh: bool = True, services: dict[str, str] | None = None) -> None:
        """Start `up`; `fresh=False` keeps the home (its database) of an earlier start.
        `services`: DATABASE_URL and REDIS_URL of servers the caller runs (and may restart),
        instead of `up`'s embedded ones."""
        if fresh:
            shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        for variable in ("DATABASE_URL", "REDIS_URL"):  # a previous start's embedded servers
            self.env.pop(variable, None)
        self.env.update(services or {})
        self.log = (self.home / "up.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a benchmark stopped hard leaves nothing running
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"`manage.py up` exited {self.process.returncode}; see {self.log.name}")
            # `up` says so once /readyz answers and its worker processes are warm (/readyz
            # alone answers 200 before the workers are: intake does not need them).
            if "Deskpilot is ready" in Path(self.log.name).read_text(errors="replace"):
                break
            time.sleep(1)
        else:
            sys.exit(f"not ready after {READY_TIMEOUT:.0f} s; see {self.log.name}")
        if not services:
            run = self.home / "run"
            self.env["DATABASE_URL"] = (run / "database_url").read_text().strip()
            self.env["REDIS_URL"] = (run / "redis_url").read_text().strip()

    def manage(self, *args: str) -> str:
        result = self.manage_result(*args)
        if result.returncode != 0:
            sys.exit(f"`manage.py {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def manage_result(self, *args: str) -> subprocess.CompletedProcess:
        """A management command's completed process, whatever its exit code."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # `up` stops its children, then the embedded servers
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def classify(client: httpx.Client, texts: list[str]) -> list[dict]:
    """`POST /api/v1/triage/classify`'s results for `texts`, in order, in calls of at most
    CLASSIFY_BATCH texts."""
    results: list[dict] = []
    for start in range(0, len(texts), CLASSIFY_BATCH):
        response = client.post(
            "/api/v1/triage/classify", json={"texts": texts[start : start + CLASSIFY_BATCH]}
        )
        response.raise_for_status()
        results += response.json()["results"]
    return results


def triage_check(client: httpx.Client, held: list[tuple[str, str, str]]) -> None:
    started = time.perf_counter()
    results = classify(client, [question for question, _, _ in held])
    elapsed = time.perf_counter() - started
    correct = np.array(
        [r["intent"] == intent for r, (_, intent, _) in zip(results, held, strict=True)]
    )
    confidence = np.array([r["confidence"] or 0.0 for r in results])
    sure = confidence >= 0.9
    print(
        f"\ntriage through POST /api/v1/triage/classify, {len(results)} held-out questions "
        f"in {elapsed:.1f} s: accuracy {correct.mean():.4f} (bar 0.935), ECE "
        f"{expected_calibration_error(confidence, correct):.4f} (bar 0.03), at confidence >= 0.9 "
        f"{correct[sure].mean() if sure.any() else float('nan'):.4f} correct of {int(sure.sum())}"
        f" (bar 0.98), out of scope {sum(bool(r['out_of_scope']) for r in results)}"
    )


def search_check(client: httpx.Client, held: list[tuple[str, str, str]]) -> None:
    """Issue 30's check: each held-out question the help center answers, through
    `GET /api/v1/knowledge/search?q=...&k=5`; the right article first / in the top 5, and the
    latency seen by the client."""
    answered = [(q, a) for q, _, a in held if a]
    client.get("/api/v1/knowledge/search", params={"q": "warm up", "k": 5})
    ranks, times = [], []
    for question, expected in answered:
        started = time.perf_counter()
        response = client.get("/api/v1/knowledge/search", params={"q": question, "k": 5})
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        ids = [hit["external_id"] for hit in response.json()["results"]]
        ranks.append(ids.index(expected) + 1 if expected in ids else None)
    times.sort()
    n = len(answered)
    print(
        f"search ({n} questions): right article first {sum(r == 1 for r in ranks) / n:.3f}, "
        f"in the top 5 {sum(r is not None and r <= 5 for r in ranks) / n:.3f}; latency p50 "
        f"{times[n // 2]:.1f} ms, p95 {times[min(n - 1, round(0.95 * (n - 1)))]:.1f} ms"
    )


def copilot_check(
    client: httpx.Client, held: list[tuple[str, str, str]], settle: float = 0.0
) -> None:
    posted = []
    started = time.perf_counter()
    for number, (question, intent, expected) in enumerate(held):
        response = client.post(
            "/api/v1/tickets",
            json={"customer": {"email": f"customer{number}@example.com"}, "body": question},
        )
        response.raise_for_status()
        posted.append((response.json()["id"], question, intent, expected))
    print(f"\nposted {len(posted)} tickets in {time.perf_counter() - started:.1f} s")
    drafts: dict[int, dict] = {}
    # Reading drafts back while the worker drafts loads the web process on the same cores.
    time.sleep(settle)
    deadline = time.monotonic() + DRAFTS_TIMEOUT
    while len(drafts) < len(posted) and time.monotonic() < deadline:
        for ticket_id, *_ in posted:
            if ticket_id not in drafts:
                draft = client.get(f"/api/v1/tickets/{ticket_id}").json().get("draft")
                if draft is not None:
                    drafts[ticket_id] = draft
        time.sleep(1)
    drained = time.perf_counter() - started
    print(
        f"drafts read back for {len(drafts)}/{len(posted)} tickets, "
        f"{drained:.0f} s after the first post"
    )
    decisions, reasons, wrong = Counter(), Counter(), []
    auto = right = unreasoned = 0
    timings: list[dict] = []
    for ticket_id, question, _, expected in posted:
        draft = drafts.get(ticket_id)
        if draft is None:
            decisions["no draft"] += 1
            continue
        decisions[draft["decision"]] += 1
        if draft.get("stage_timings"):
            timings.append(draft["stage_timings"])
        if draft["decision"] == "auto_sent":
            auto += 1
            cited = draft["citations"][0]["external_id"] if draft["citations"] else ""
            if expected and cited == expected:
                right += 1
            else:
                wrong.append((question, expected or "(no article)", cited))
        else:
            reasons[draft["reason"] or "(none)"] += 1
            unreasoned += not draft["reason"]
    print(
        f"auto-sent {auto}/{len(posted)} ({auto / len(posted):.1%}, bar 50%), precision "
        f"{right / auto if auto else float('nan'):.4f} ({right}/{auto}, bar 0.97); "
        f"non-auto without a reason: {unreasoned}"
    )
    print(f"  decisions: {dict(decisions)}")
    print(f"  reasons:   {dict(reasons)}")
    timings_report(timings)
    for question, expected, cited in wrong:
        print(f"  wrong auto-send: {question!r}: expected {expected}, cited {cited}")


METRICS_TOKEN = "acceptance-metrics-token-" + "x" * 24


class Receiver:
    """A webhook receiver on loopback, in a thread of this (client) process."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []  # type: ignore[var-annotated]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscribe(self, client: httpx.Client) -> str:
        response = client.post(
            "/api/v1/webhooks",
            json={
                "url": f"http://127.0.0.1:{self.server.server_address[1]}/hook",
                "event_types": ["ticket.created", "draft.ready"],
            },
        )
        response.raise_for_status()
        return str(response.json()["secret"])


def signature_valid(headers: dict, body: bytes, secret: str) -> bool:
    import hashlib
    import hmac

    parts = dict(item.split("=", 1) for item in headers["Deskpilot-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) <= 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def operations_check(client: httpx.Client, receiver: Receiver, secret: str, tickets: int) -> None:
    """Issue 31's check: /metrics adds up to the drafts; webhooks arrived, signed."""
    import json

    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + 120
    while len(receiver.received) < 2 * tickets and time.monotonic() < deadline:
        time.sleep(1)
    kinds = Counter(headers["Deskpilot-Event"] for headers, _ in receiver.received)
    valid = sum(signature_valid(headers, body, secret) for headers, body in receiver.received)
    created = {json.loads(b)["data"]["ticket"]["id"] for h, b in receiver.received
               if h["Deskpilot-Event"] == "ticket.created"}  # fmt: skip
    print(
        f"\nwebhooks: {dict(kinds)} for {tickets} tickets ({len(created)} distinct tickets "
        f"created), {valid}/{len(receiver.received)} signatures valid"
    )
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code
    samples = [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]
    stage_count = sum(
        s.value for s in samples
        if s.name == "deskpilot_pipeline_stage_duration_seconds_count"
        and s.labels.get("stage") == "total"
    )  # fmt: skip
    decisions = sum(s.value for s in samples if s.name == "deskpilot_draft_decisions_total")
    print(
        f"/metrics: HTTP {response.status_code} ({len(samples)} samples parsed; a wrong token: "
        f"HTTP {refused}); stage histogram count (stage=total) {stage_count:.0f}, decisions by "
        f"reason add up to {decisions:.0f}, drafts written {kinds['draft.ready']}"
    )


def timings_report(timings: list[dict]) -> None:
    """The stage timings the API reports, p50/p95, and everything but the drafter's own time
    (the draft stage: local/extractive here, the model with a provider). Measured under this
    check's burst: every ticket posted at once, the worker's processes, the web process and
    this poller sharing the machine."""
    if not timings:
        return

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label} p50 {statistics.median(values):.0f} ms p95 {percentile(values, 0.95):.0f} ms"
        )

    stages = [name for name in timings[0] if name != "total"]
    print(
        "  stage timings on the worker: "
        + "; ".join(line(name, [t.get(name, 0.0) for t in timings]) for name in stages)
    )
    drafted = [t for t in timings if "draft" in t and "total" in t]
    print("  " + line("total", [t["total"] for t in drafted]))
    print("  " + line("total minus the draft stage", [t["total"] - t["draft"] for t in drafted]))


def kb_import(instance: Instance, dataset: str, train: list) -> None:  # type: ignore[type-arg]
    folder, _ = BANKING77_HELP_CENTERS[dataset]
    started = time.perf_counter()
    print(instance.manage("kb_import", str(folder / "kb"), "--source", dataset).strip())
    print(f"kb_import took {time.perf_counter() - started:.1f} s")


def train_on_rows(instance: Instance, rows: Iterable[tuple[str, str]]) -> str:
    """`manage.py triage_train --activate` on these (text, category) rows, written as a CSV
    in the instance's home; the command's report."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "category"])
    writer.writerows(rows)
    train_path = instance.home / "train.csv"
    train_path.write_text(buffer.getvalue(), encoding="utf-8")
    return instance.manage("triage_train", str(train_path), "--activate")


def triage_train(instance: Instance, dataset: str, train: list) -> None:  # type: ignore[type-arg]
    started = time.perf_counter()
    report = train_on_rows(instance, train)
    print(
        f"triage_train on {len(train)} questions took {time.perf_counter() - started:.0f} s; "
        + " | ".join(line.strip() for line in report.splitlines()[1:4])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=tuple(BANKING77_HELP_CENTERS), default="birch")
    parser.add_argument(
        "--train-first",
        action="store_true",
        help="train the classifier before importing the articles (the other order)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the instance's home")
    parser.add_argument("--search-only", action="store_true", help="skip posting tickets")
    parser.add_argument(
        "--operations", action="store_true", help="also check /metrics and webhooks (issue 31)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after posting before reading drafts back (no poller load)",
    )
    arguments = parser.parse_args()
    folder, salt = BANKING77_HELP_CENTERS[arguments.dataset]
    train, held = bank_split(folder, salt)
    instance = Instance(ROOT / ".deskpilot" / f"acceptance-{arguments.dataset}")
    receiver = None
    if arguments.operations:
        receiver = Receiver()
        instance.env.update(METRICS_TOKEN=METRICS_TOKEN, WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
    started = time.perf_counter()
    instance.start()
    print(f"`manage.py up` ready in {time.perf_counter() - started:.1f} s at {instance.base_url}")
    try:
        steps = [kb_import, triage_train]
        for step in reversed(steps) if arguments.train_first else steps:
            step(instance, arguments.dataset, train)
        key = instance.manage("apikey_create", "acceptance").strip()
        with httpx.Client(
            base_url=instance.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            triage_check(client, held)
            search_check(client, held)
            secret = receiver.subscribe(client) if receiver is not None else ""
            if not arguments.search_only:
                copilot_check(client, held, arguments.settle)
            if receiver is not None:
                operations_check(client, receiver, secret, len(held))
    finally:
        instance.stop()
        if not arguments.keep:
            shutil.rmtree(instance.home, ignore_errors=True)


if __name__ == "__main__":
    main()
