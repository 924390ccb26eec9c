"""Drafted messages per second at volume, with a model that takes seconds (issue 32).

A fresh instance started with `manage.py up` (the Birchwood help center imported, the
classifier trained on Banking77's training split, as `acceptance.py` does), then tickets
posted through `POST /api/v1/tickets` at a steady rate from held-out customer questions,
and the time from each message's intake to its draft's decision read from the database.
Nobody watches the conversations, so replies are not streamed to anyone.

Two runs on the same instance (restarted in between, its data kept):
- `offline`: the offline drafter (local/extractive), no model server;
- `model`: every alias on a local OpenAI-compatible server (tests/llm/fake_openai.py, in a
  process of its own) that takes MODEL_SECONDS per call: a ~600-character reply written at
  ~50 tokens a second, as a provider streams it (a call that does not stream waits as long).

Prints per run: messages posted and drafted, sustained drafted messages per second (between
10% and 90% of the drafts), p50/p95/p99 of intake-to-decision, the most model calls the
server had in flight at once, and CPU seconds per message of each process kind (web, the
pipeline worker, the other worker, beat, PostgreSQL, Redis) over the run.

    .venv/bin/python benchmarks/throughput.py [--messages 400] [--rate 14] [--runs offline,model]
        [--pipeline-pool threads|prefork] [--pipeline-concurrency 32]
        [--pipeline-processes 1] [--reuse]

`--pipeline-pool prefork --pipeline-concurrency 2` is the worker before issue 32: two
prefork processes consuming every queue.

A burst (issue 32: 5 000 tickets in a minute, absorbed, drafted oldest first):

    .venv/bin/python benchmarks/throughput.py --runs model --messages 5000 --rate 83 \
        --pipeline-processes 2 --no-cache --reuse

Each run also prints the intake side (POST latency, refusals), the deepest `pipeline` queue
seen (sampled every second), how closely drafting followed arrival order (Kendall's tau
between intake and decision order: 1 is strictly oldest first), and Redis after the run
(memory, keys, and keys without an expiry by prefix).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import psycopg
import redis
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from acceptance import Instance, kb_import, train_on_rows  # noqa: E402
from copilot_pipeline import BANKING77_HELP_CENTERS, bank_split  # noqa: E402
from percentiles import percentile  # noqa: E402

from tests.llm.fake_openai import Reply, ServerProcess  # noqa: E402

MODEL_SECONDS = 3.0
TOKENS_PER_SECOND = 50
DATASET = "birch"
SETTLE_TIMEOUT = 900.0


def model_reply() -> Reply:
    """A grounded answer citing the first passage, ~MODEL_SECONDS x TOKENS_PER_SECOND tokens
    of ~4 characters, one token per streamed chunk."""
    tokens = int(MODEL_SECONDS * TOKENS_PER_SECOND)
    sentence = "You can follow the steps in the article to sort this out yourself. "
    text = (sentence * (tokens * 4 // len(sentence) + 1))[: tokens * 4 - 60].strip()
    content = json.dumps({"reply": text, "citations": ["P1"], "answerable": True})
    chunks = -(-len(content) // 4)
    return Reply.ok(content, chunk_chars=4, chunk_delay=MODEL_SECONDS / chunks)


def model_env(base_url: str) -> dict[str, str]:
    env = {"BENCH_FAKE_KEY": "fake"}
    for alias in ("DRAFT_FAST", "DRAFT_STRONG"):
        env[f"LLM_{alias}_MODEL"] = "openai/gpt-4o-mini"
        env[f"LLM_{alias}_API_BASE"] = base_url
        env[f"LLM_{alias}_API_KEY_ENV"] = "BENCH_FAKE_KEY"
    return env


def process_kind(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    if "postgres" in command:
        return "postgresql"
    if "redis" in command:
        return "redis"
    if "uvicorn" in command:
        return "web"
    if " beat" in command:
        return "beat"
    if "-Q pipeline" in command:
        return "pipeline worker"
    if "celery" in command:
        return "other worker"
    return "launcher"


def cpu_by_kind(root_pid: int, home: Path) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of every process under `up` and of its embedded
    PostgreSQL (a daemon of its own), by pid."""
    seen: dict[int, tuple[str, float]] = {}
    try:
        processes = [psutil.Process(root_pid), *psutil.Process(root_pid).children(recursive=True)]
        pid_file = home / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            processes += [postmaster, *postmaster.children(recursive=True)]
    except psutil.Error:
        return seen
    for process in processes:
        try:
            times = process.cpu_times()
            seen[process.pid] = (process_kind(process), times.user + times.system)
        except psutil.Error:
            continue
    return seen


def post_tickets(client: httpx.Client, texts: list[str], rate: float) -> list[int]:
    """Post one ticket per text, `rate` a second (paced from the start), from enough threads
    to keep the pace; prints the POSTs' latencies and any refusal (never raises for one)."""
    ids: list[int | None] = [None] * len(texts)
    seconds: list[float] = [0.0] * len(texts)
    refused: Counter[str] = Counter()
    started = time.perf_counter()

    def post(index: int) -> None:
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        try:
            response = client.post(
                "/api/v1/tickets",
                json={
                    "customer": {"email": f"throughput-{time.time_ns()}-{index}@example.com"},
                    "body": texts[index],
                },
            )
        except httpx.HTTPError as error:
            refused[type(error).__name__] += 1
            return
        finally:
            seconds[index] = time.perf_counter() - sent
        if response.status_code != 201:
            refused[str(response.status_code)] += 1
            return
        ids[index] = response.json()["id"]

    with ThreadPoolExecutor(min(64, max(16, int(rate)))) as pool:
        list(pool.map(post, range(len(texts))))
    took = time.perf_counter() - started
    print(f"  posted {len(texts)} tickets in {took:.1f} s ({len(texts) / took:.1f}/s)")
    print(
        "  POST /api/v1/tickets: "
        + ", ".join(f"p{q} {percentile(seconds, q / 100) * 1000:.0f} ms" for q in (50, 95, 99))
        + f", max {max(seconds) * 1000:.0f} ms; refused: {dict(refused) or 'none'}"
    )
    return [ticket_id for ticket_id in ids if ticket_id is not None]


PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")  # Celery's on Redis


class QueueWatch:
    """The `pipeline` queue's length, sampled every second in a thread."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.samples: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.samples.append(
                    sum(self.client.llen("pipeline" + suffix) for suffix in PRIORITY_SUFFIXES)
                )
            except redis.RedisError:
                continue

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.client.close()


def redis_report(redis_url: str) -> None:
    """Redis memory, keys, and the keys without an expiry by prefix (growth to watch)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    memory = client.info("memory")
    keys = client.dbsize()
    lasting: Counter[str] = Counter()
    for key in client.scan_iter(count=1000):
        if client.ttl(key) == -1:
            name = key.decode(errors="replace")
            # Deskpilot's own keys by their first two parts; Celery's reply queues as one.
            lasting[":".join(name.split(":")[:2]) if ":" in name else name.split(".", 1)[-1]] += 1
    print(
        f"  redis: used_memory {memory['used_memory'] / 2**20:.1f} MiB "
        f"(peak {memory['used_memory_peak'] / 2**20:.1f} MiB), {keys} keys, "
        f"{sum(lasting.values())} without an expiry: {dict(lasting.most_common(8))}"
    )
    client.close()


def decisions(database_url: str, ticket_ids: list[int]) -> list[tuple[float, float]]:
    """(intake, decision) epoch seconds of the first customer message of each ticket that
    has its draft."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            """
            SELECT extract(epoch FROM m.created_at), extract(epoch FROM min(d.created_at))
            FROM tickets_message m JOIN copilot_draft d ON d.message_id = m.id
            WHERE m.ticket_id = ANY(%s) GROUP BY m.id
            """,
            (ticket_ids,),
        ).fetchall()
    return [(float(intake), float(decided)) for intake, decided in rows]


def run(
    instance: Instance,
    name: str,
    texts: list[str],
    rate: float,
    server: ServerProcess | None,
    *,
    cache: bool = True,
) -> None:
    key = instance.manage("apikey_create", f"throughput-{name}-{time.time_ns()}").strip()
    # The same questions as the run before: without this, the reply cache would answer them.
    with psycopg.connect(instance.env["DATABASE_URL"]) as connection:
        connection.execute("DELETE FROM copilot_replycacheentry")
    # Off: a question asked again within the run is drafted again (a burst of repeats).
    instance.manage(
        "shell",
        "-c",
        "from apps.copilot.models import CopilotPolicy; CopilotPolicy.objects.update_or_create("
        f"singleton=True, defaults={{'cache_enabled': {cache}}})",
    )
    if server is not None:
        server.reset(model_reply())
    assert instance.process is not None
    before = cpu_by_kind(instance.process.pid, instance.home)
    watch = QueueWatch(instance.env["REDIS_URL"])
    with httpx.Client(
        base_url=instance.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        ticket_ids = post_tickets(client, texts, rate)
    deadline = time.monotonic() + max(SETTLE_TIMEOUT, len(texts) / 2)
    while time.monotonic() < deadline:
        done = decisions(instance.env["DATABASE_URL"], ticket_ids)
        if len(done) >= len(ticket_ids):
            break
        time.sleep(1.0)
    after = cpu_by_kind(instance.process.pid, instance.home)
    watch.stop()
    if watch.samples:
        print(
            f"  pipeline queue: deepest {max(watch.samples)} tasks waiting "
            f"(median of the samples {statistics.median(watch.samples):.0f})"
        )
    done = sorted(decisions(instance.env["DATABASE_URL"], ticket_ids), key=lambda row: row[1])
    print(f"  drafted {len(done)}/{len(ticket_ids)}")
    if len(done) < 10:
        return
    finished = [decided for _, decided in done]
    low, high = int(len(done) * 0.1), int(len(done) * 0.9)
    sustained = (high - low) / max(1e-9, finished[high] - finished[low])
    latencies = [decided - intake for intake, decided in done]
    print(f"  sustained: {sustained:.2f} drafted messages/s (between 10% and 90% of the drafts)")
    order = kendalltau([intake for intake, _ in done], [decided for _, decided in done])
    print(f"  drafted in arrival order: Kendall's tau {order.statistic:.3f}")
    print(
        "  intake to decision: "
        + ", ".join(f"p{q} {percentile(latencies, q / 100):.2f} s" for q in (50, 95, 99))
    )
    if server is not None:
        stats = server.stats()
        print(
            f"  model calls: {stats['requests']} "
            f"(at most {stats['max_in_flight']} in flight at once)"
        )
    spent: dict[str, float] = {}
    for pid, (kind, seconds) in after.items():
        spent[kind] = spent.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
    total = sum(spent.values())
    print(
        f"  CPU per message: {total / len(done) * 1000:.0f} ms in all; "
        + ", ".join(
            f"{kind} {seconds / len(done) * 1000:.0f} ms"
            for kind, seconds in sorted(spent.items(), key=lambda item: -item[1])
        )
    )
    redis_report(instance.env["REDIS_URL"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rate", type=float, default=14.0, help="tickets posted per second")
    parser.add_argument("--runs", default="offline,model")
    parser.add_argument("--pipeline-pool", default="threads", choices=("threads", "prefork"))
    parser.add_argument("--pipeline-concurrency", type=int, default=32)
    parser.add_argument("--pipeline-processes", type=int, default=1)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the instance's home from an earlier run (help center imported, classifier "
        "trained) instead of setting it up again",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="turn the reply cache off for the runs (repeated questions drafted again)",
    )
    arguments = parser.parse_args()
    folder, salt = BANKING77_HELP_CENTERS[DATASET]
    train, held = bank_split(folder, salt)
    questions = [row[0] for row in held]
    texts = [questions[index % len(questions)] for index in range(arguments.messages)]
    instance = Instance(ROOT / ".deskpilot" / "throughput")
    instance.env.update(
        PIPELINE_WORKER_POOL=arguments.pipeline_pool,
        PIPELINE_WORKER_CONCURRENCY=str(arguments.pipeline_concurrency),
        PIPELINE_WORKER_PROCESSES=str(arguments.pipeline_processes),
        LLM_BUDGET_DAILY_USD="1000000",
        LLM_BUDGET_MONTHLY_USD="1000000",
        RATE_LIMITS="api_key=off",
    )
    print(
        f"pipeline workers: {arguments.pipeline_processes} x {arguments.pipeline_pool} "
        f"x {arguments.pipeline_concurrency}; "
        f"{arguments.messages} messages at {arguments.rate:g}/s"
    )
    server = ServerProcess()
    fresh = not (arguments.reuse and (instance.home / "pgdata").exists())
    try:
        for name in arguments.runs.split(","):
            if name == "model":
                instance.env.update(model_env(server.base_url))
            else:
                for variable in model_env(server.base_url):
                    instance.env.pop(variable, None)
            instance.start(fresh=fresh)
            if fresh:
                kb_import(instance, DATASET, train)
                started = time.perf_counter()
                train_on_rows(instance, train)
                print(f"triage_train took {time.perf_counter() - started:.0f} s")
                fresh = False
            print(f"\n{name} drafter:")
            time.sleep(5)  # beat's first passes, the workers' start-up
            run(
                instance,
                name,
                texts,
                arguments.rate,
                server if name == "model" else None,
                cache=not arguments.no_cache,
            )
            instance.stop()
    finally:
        instance.stop()
        server.stop()


if __name__ == "__main__":
    main()
