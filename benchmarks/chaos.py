"""Crash-safety, measured (issue 32): tickets posted while workers, Redis and PostgreSQL die.

A fresh instance started with `manage.py up` on a PostgreSQL and a Redis that this script
runs itself (embedded, as `up` would, but ours to kill), the Birchwood help center imported
and the classifier trained on Banking77 (as `acceptance.py` does), every alias on a local
OpenAI-compatible server that takes MODEL_SECONDS a call (so runs are in flight when their
worker dies). Then:

- TICKETS tickets posted at RATE a second from 16 client threads, most through
  `POST /api/v1/tickets` (each with an Idempotency-Key, retried as a careful integration
  would on a connection error, a 5xx or a 429), the rest as widget conversations;
- meanwhile, KILLS times at random moments, SIGKILL to a random Celery worker process (the
  pipeline's threads worker, the other worker's parent or one of its pool processes; `up`
  starts a dead one again); Redis killed (SIGKILL) and started again once, a third of the
  way in; PostgreSQL stopped in immediate mode (a crash: recovery on start) and started
  again once, two thirds of the way in;
- then the system is left to settle (the sweep delivers lost work), and counted: tickets
  accepted but not stored (lost), conversations stored twice, `manage.py pipeline_audit`
  over them (messages undecided, handoffs without a reason, replies sent twice, auto-sent
  drafts with no reply), the decisions, what intake answered during the faults, and the
  time the system took to recover: per fault, until the first decision after it; after the
  last post, until every message was decided; intake to decision p50/p95/max.

    .venv/bin/python benchmarks/chaos.py [--tickets 1000] [--rate 6] [--kills 20]
        [--no-restarts] [--widget-share 0.3] [--seed 7] [--reuse]

Exits 1 when a ticket was lost, a reply sent twice or a message left undecided.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from acceptance import Instance, kb_import, train_on_rows  # noqa: E402
from copilot_pipeline import BANKING77_HELP_CENTERS, bank_split  # noqa: E402
from percentiles import percentile  # noqa: E402
from throughput import model_env  # noqa: E402

from apps.core.embedded import EmbeddedPostgres, EmbeddedRedis, redis_server_binary  # noqa: E402
from tests.llm.fake_openai import Reply, ServerProcess  # noqa: E402

DATASET = "birch"
MODEL_SECONDS = 2.0
SETTLE_TIMEOUT = 1800.0
RETRY_FOR_SECONDS = 180.0
ORIGIN = "http://chaos.example"


def model_reply() -> Reply:
    """A grounded answer (the first passage's opening sentences, cited), streamed over about
    MODEL_SECONDS: so replies are auto-sent, and "sent twice" can happen."""
    return Reply.grounded(chunk_chars=4, chunk_delay=MODEL_SECONDS / 100)


@dataclass
class Services:
    """PostgreSQL and Redis run by this script, restartable."""

    home: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.home)
        self.redis = EmbeddedRedis(self.home)

    def start(self) -> dict[str, str]:
        return {"DATABASE_URL": self.postgres.start(), "REDIS_URL": self.redis.start()}

    def redis_crash_and_restart(self, down_seconds: float) -> None:
        assert self.redis.process is not None
        self.redis.process.kill()
        self.redis.process.wait()
        time.sleep(down_seconds)
        # Not through EmbeddedRedis.start(): its child dies with the thread that started it
        # (PR_SET_PDEATHSIG), and this runs on the faults thread, which ends first.
        self.redis.socket_path.unlink(missing_ok=True)
        self.redis.process = subprocess.Popen(
            [redis_server_binary(), str(self.redis.data_dir / "redis.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self.redis.socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def postgres_crash_and_restart(self, down_seconds: float) -> None:
        pid = self.postgres.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: no checkpoint, recovery on start
        deadline = time.monotonic() + 30
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(down_seconds)
        # pgserver hands back the server object it made for this folder without checking
        # that the server still runs: forget it, so start() starts PostgreSQL again.
        from pgserver.postgres_server import PostgresServer

        for folder in list(PostgresServer._instances):
            if Path(folder).resolve() == self.postgres.pgdata.resolve():
                del PostgresServer._instances[folder]
        self.postgres.start()

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


@dataclass
class Intake:
    """What the clients were answered."""

    accepted: dict[int, str] = field(default_factory=dict)  # index -> "api:<id>" / "widget:<id>"
    given_up: list[int] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # status or error kind
    retried: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, answer: str) -> None:
        with self.lock:
            self.answers[answer] += 1


def post_ticket(
    client: httpx.Client, widget_key: str, index: int, text: str, widget: bool, intake: Intake
) -> None:
    """Post one ticket, retrying like a careful client until accepted or RETRY_FOR_SECONDS."""
    idempotency_key = f"chaos-{uuid.uuid4().hex}"
    email = f"chaos-{index}-{uuid.uuid4().hex[:6]}@example.com"
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    pause = 0.5
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            if widget:
                response = client.post(
                    f"/widget/api/{widget_key}/conversations",
                    json={"body": text, "email": email},
                    headers={"Origin": ORIGIN},
                )
            else:
                response = client.post(
                    "/api/v1/tickets",
                    json={"customer": {"email": email}, "body": text},
                    headers={"Idempotency-Key": idempotency_key},
                )
            intake.note(str(response.status_code))
            if response.status_code in (200, 201):
                body = response.json()
                ticket_id = body["conversation_id"] if widget else body["id"]
                with intake.lock:
                    intake.accepted[index] = f"{'widget' if widget else 'api'}:{ticket_id}"
                    intake.retried += attempt > 1
                return
            if response.status_code < 500 and response.status_code != 429:
                print(f"  ticket {index} refused: {response.status_code} {response.text[:200]}")
                break
        except httpx.HTTPError as error:
            intake.note(type(error).__name__)
        time.sleep(pause)
        pause = min(5.0, pause * 2)
    with intake.lock:
        intake.given_up.append(index)


def celery_worker_processes(up_pid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(up_pid).children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "celery" in command and " worker " in command:
            found.append(process)
    return found


def worker_kind(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
        parent = process.parent()
        child = parent is not None and "celery" in " ".join(parent.cmdline())
    except psutil.Error:
        return "gone"
    if "-Q pipeline" in command:
        return "pipeline worker"
    return "worker pool process" if child else "worker parent"


def faults(
    up_pid: int,
    services: Services,
    window: float,
    kills: int,
    restarts: bool,
    rng: random.Random,
    log: list[tuple[float, str]],
) -> None:
    """Kill and restart on schedule over `window` seconds from now; each fault's wall time
    (after its restart, for a service) and what it was, appended to `log`."""
    started = time.time()
    plan = [(rng.uniform(0.05, 0.95) * window, "kill") for _ in range(kills)]
    if restarts:
        plan += [(window / 3, "redis"), (2 * window / 3, "postgresql")]
    for offset, kind in sorted(plan):
        time.sleep(max(0.0, started + offset - time.time()))
        if kind == "kill":
            candidates = celery_worker_processes(up_pid)
            if not candidates:
                log.append((time.time(), "kill skipped: no worker process running"))
                continue
            victim = rng.choice(candidates)
            what = worker_kind(victim)
            try:
                victim.send_signal(signal.SIGKILL)
            except psutil.Error:
                continue
            log.append((time.time(), f"SIGKILL {what} (pid {victim.pid})"))
        elif kind == "redis":
            services.redis_crash_and_restart(down_seconds=3.0)
            log.append((time.time(), "Redis killed, back after 3 s"))
        else:
            services.postgres_crash_and_restart(down_seconds=3.0)
            log.append((time.time(), "PostgreSQL crashed (immediate stop), back after 3 s"))
        print(f"  {time.time() - started:6.1f} s  {log[-1][1]}", flush=True)


def ticket_ids(intake: Intake) -> list[int]:
    return [int(value.split(":")[1]) for value in intake.accepted.values()]


def unfinished(database_url: str, ids: list[int]) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            """
            SELECT count(*) FROM tickets_message m
            WHERE m.ticket_id = ANY(%s) AND m.author_kind = 'customer'
              AND NOT EXISTS (SELECT 1 FROM copilot_draft d WHERE d.message_id = m.id)
            """,
            (ids,),
        ).fetchone()
    return int(row[0]) if row else 0


def report(
    instance: Instance,
    intake: Intake,
    fault_log: list[tuple[float, str]],
    last_post: float,
    settled_at: float | None,
    expected: int,
) -> bool:
    database_url = instance.env["DATABASE_URL"]
    ids = ticket_ids(intake)
    with psycopg.connect(database_url) as connection:
        stored = {
            row[0]
            for row in connection.execute(
                "SELECT id FROM tickets_ticket WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        }
        doubled = connection.execute(
            """
            SELECT count(*) FROM (
                SELECT c.email FROM tickets_ticket t JOIN tickets_customer c ON c.id = t.customer_id
                WHERE c.email LIKE 'chaos-%%' GROUP BY c.email HAVING count(*) > 1
            ) twice
            """
        ).fetchone()
        timings = connection.execute(
            """
            SELECT extract(epoch FROM m.created_at), extract(epoch FROM d.created_at),
                   m.pipeline_attempts
            FROM tickets_message m JOIN copilot_draft d ON d.message_id = m.id AND d.generation = 1
            WHERE m.ticket_id = ANY(%s) AND m.author_kind = 'customer'
            """,
            (ids,),
        ).fetchall()
    timings = [
        (float(intake_at), float(decided), attempts) for intake_at, decided, attempts in timings
    ]
    lost = [ticket_id for ticket_id in ids if ticket_id not in stored]
    print(f"\ntickets: {expected} sent, {len(ids)} accepted, {len(intake.given_up)} given up by "
          f"the client after {RETRY_FOR_SECONDS:.0f} s of retries, {intake.retried} accepted "
          f"after a retry")  # fmt: skip
    print("intake answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(intake.answers.items())))
    print(f"lost (accepted, not stored): {len(lost)}")
    print(f"conversations stored twice: {int(doubled[0]) if doubled else 0}")
    audit_args = ["pipeline_audit", "--hours", f"{(time.time() - last_post) / 3600 + 1:.2f}"]
    result = instance.manage_result(*audit_args)
    print("pipeline_audit:\n  " + result.stdout.strip().replace("\n", "\n  "))
    decided = sorted(decided for _, decided, _ in timings)
    print("\nfaults and recovery (first decision after each):")
    for when, what in fault_log:
        after = next((moment for moment in decided if moment > when), None)
        recovery = f"{after - when:.1f} s" if after is not None else "never"
        print(f"  {when - fault_log[0][0]:6.1f} s  {what}: {recovery}")
    if settled_at is not None:
        print(f"settled {settled_at - last_post:.0f} s after the last post")
    else:
        print(f"NOT settled {SETTLE_TIMEOUT:.0f} s after the last post")
    latencies = [float(decided - intake_at) for intake_at, decided, _ in timings]
    redelivered = [
        float(decided - intake_at) for intake_at, decided, attempts in timings if attempts > 1
    ]
    if latencies:
        print(
            "intake to decision: "
            + ", ".join(f"p{q} {percentile(latencies, q / 100):.1f} s" for q in (50, 95))
            + f", max {max(latencies):.1f} s"
        )
    if redelivered:
        print(
            f"messages delivered more than once: {len(redelivered)}; their intake to decision "
            f"p50 {percentile(redelivered, 0.5):.1f} s, max {max(redelivered):.1f} s"
        )
    return not lost and result.returncode == 0 and not intake.given_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=6.0, help="tickets posted per second")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--no-restarts", action="store_true", help="no Redis/PostgreSQL restart")
    parser.add_argument("--widget-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the instance from an earlier run (help center imported, classifier trained)",
    )
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    folder, salt = BANKING77_HELP_CENTERS[DATASET]
    train, held = bank_split(folder, salt)
    questions = [row[0] for row in held]
    texts = [questions[index % len(questions)] for index in range(arguments.tickets)]
    instance = Instance(ROOT / ".deskpilot" / "chaos")
    services_home = ROOT / ".deskpilot" / "chaos-services"
    fresh = not (arguments.reuse and (services_home / "pgdata").exists())
    if fresh:
        shutil.rmtree(services_home, ignore_errors=True)
    services = Services(services_home)
    server = ServerProcess()
    server.reset(model_reply())
    instance.env.update(
        model_env(server.base_url),
        LLM_BUDGET_DAILY_USD="1000000",
        LLM_BUDGET_MONTHLY_USD="1000000",
        RATE_LIMITS="api_key=off,widget_ip_conversation=off,widget_ip_message=off",
    )
    try:
        urls = services.start()
        if not fresh:  # an earlier run's tickets and queued tasks would be counted and run
            with psycopg.connect(urls["DATABASE_URL"]) as connection:
                connection.execute("TRUNCATE tickets_customer, tickets_ticket CASCADE")
            redis.Redis.from_url(urls["REDIS_URL"]).flushall()
        instance.start(fresh=fresh, services=urls)
        if fresh:
            kb_import(instance, DATASET, train)
            started = time.perf_counter()
            train_on_rows(instance, train)
            print(f"triage_train took {time.perf_counter() - started:.0f} s")
        key = instance.manage("apikey_create", f"chaos-{time.time_ns()}").strip()
        widget_key = instance.manage(
            "widgetkey_create", "chaos", "--origin", ORIGIN, "--if-missing"
        ).strip()
        with psycopg.connect(instance.env["DATABASE_URL"]) as connection:
            connection.execute("DELETE FROM copilot_replycacheentry")  # a model call each
        assert instance.process is not None
        window = arguments.tickets / arguments.rate
        restarts = not arguments.no_restarts
        print(
            f"{arguments.tickets} tickets at {arguments.rate:g}/s ({window:.0f} s), "
            f"{arguments.kills} worker kills"
            + (", Redis and PostgreSQL restarted once each" if restarts else "")
        )
        fault_log: list[tuple[float, str]] = []
        chaos = threading.Thread(
            target=faults,
            args=(
                instance.process.pid,
                services,
                window,
                arguments.kills,
                restarts,
                rng,
                fault_log,
            ),
            daemon=True,
        )
        intake = Intake()
        widget = [rng.random() < arguments.widget_share for _ in texts]
        started = time.perf_counter()
        chaos.start()
        with httpx.Client(
            base_url=instance.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:

            def post(index: int) -> None:
                delay = started + index / arguments.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                post_ticket(client, widget_key, index, texts[index], widget[index], intake)

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(post, range(len(texts))))
        last_post = time.time()
        chaos.join()
        print(f"posted in {time.perf_counter() - started:.0f} s; settling…")
        settled_at = None
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            if instance.process.poll() is not None:
                print(f"`manage.py up` exited {instance.process.returncode}: see its log")
                break
            try:
                if unfinished(instance.env["DATABASE_URL"], ticket_ids(intake)) == 0:
                    settled_at = time.time()
                    break
            except psycopg.Error:
                pass
            time.sleep(2.0)
        sound = report(instance, intake, fault_log, last_post, settled_at, arguments.tickets)
    finally:
        instance.stop()
        services.stop()
        server.stop()
    print("\nresult: " + ("sound" if sound else "FAILED"))
    sys.exit(0 if sound else 1)


if __name__ == "__main__":
    main()
