"""Inbox queue page: server time with 10 000 tickets, against the same page with 100.

Seeds a throwaway database (see knowledge_bench_db.py) with tickets in every status, channel,
intent and confidence band, then requests the queue page in-process through Django's test
client as a signed-in agent: the time is the server's (middleware, queries, template), with
no network. The baseline is the same requests with 100 tickets, measured first in the run.

    .venv/bin/python benchmarks/inbox_queue.py [--tickets 10000] [--repeat 40]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DESKPILOT_HTTPS", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
# Production static storage (hashed names from a manifest), collected into a throwaway folder.
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="deskpilot-bench-static-"))

from knowledge_bench_db import database_setup

database_setup("inbox")

from django.core.management import call_command  # noqa: E402

call_command("collectstatic", "--noinput", verbosity=0)

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from percentiles import percentile  # noqa: E402

from apps.accounts.models import Role  # noqa: E402
from apps.accounts.services import user_create  # noqa: E402
from apps.tickets.models import (  # noqa: E402
    AuthorKind,
    Channel,
    Customer,
    Message,
    Ticket,
    TicketPriority,
    TicketStatus,
)

INTENTS = [f"intent_{n:02d}" for n in range(38)]
PAGES = {
    "queue (open)": "/inbox/",
    "needs a human": "/inbox/?view=needs_human",
    "filtered": "/inbox/?view=all&channel=email&band=low",
    "search": "/inbox/?view=all&q=parcel",
    "htmx poll rows": "/inbox/?view=open&rows=1",
    "page 20": "/inbox/?view=all&page=20",
}


def seed(total: int, *, agents: list, rng: random.Random) -> None:
    """Add tickets (one customer message each) until there are `total`."""
    existing = Ticket.objects.count()
    missing = total - existing
    if missing <= 0:
        return
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(email=f"bench{existing + n}@example.com", name=f"Bench {existing + n}")
            for n in range(missing)
        ],
        batch_size=2000,
    )
    statuses = rng.choices(
        TicketStatus.values, weights=[15, 25, 10, 10, 40], k=missing
    )  # new, awaiting, review, handed_off, resolved
    tickets = []
    for index, (customer, status) in enumerate(zip(customers, statuses, strict=True)):
        classified = rng.random() < 0.9
        tickets.append(
            Ticket(
                customer=customer,
                subject=rng.choice(
                    ["Where is my parcel?", "Refund for order", "Charged twice", "Reset link"]
                )
                + f" #{existing + index}",
                channel=rng.choice(Channel.values),
                status=status,
                priority=rng.choice(TicketPriority.values),
                assignee=rng.choice([None, *agents]),
                intent=rng.choice(INTENTS) if classified else "",
                intent_confidence=round(rng.random(), 3) if classified else None,
                status_changed_at=now,
                last_customer_message_at=now,
                resolved_at=now if status == TicketStatus.RESOLVED else None,
            )
        )
    tickets = Ticket.objects.bulk_create(tickets, batch_size=2000)
    Message.objects.bulk_create(
        [
            Message(
                ticket=ticket,
                author_kind=AuthorKind.CUSTOMER,
                channel=ticket.channel,
                body=ticket.subject,
            )
            for ticket in tickets
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tickets_ticket; ANALYZE tickets_customer;")


def measure(client: Client, path: str, repeat: int) -> tuple[list[float], int]:
    headers = {"HTTP_HX_REQUEST": "true"} if "rows=1" in path else {}
    for _ in range(3):  # warm-up
        assert client.get(path, **headers).status_code == 200
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, **headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(path, **headers)
    return timings, len(queries.captured_queries)


def run(label: str, client: Client, repeat: int, report: Callable[[str], None]) -> dict:
    results = {}
    for name, path in PAGES.items():
        timings, query_count = measure(client, path, repeat)
        results[name] = timings
        report(
            f"{label:>8} {name:<16} p50 {percentile(timings, 0.5) * 1000:7.1f} ms  "
            f"p95 {percentile(timings, 0.95) * 1000:7.1f} ms  "
            f"{len(timings) / sum(timings):7.1f} pages/s  {query_count} queries"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--baseline-tickets", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=40)
    arguments = parser.parse_args()
    rng = random.Random(7)
    agents = [
        user_create(username=f"agent{n}", password="bench-password-1", role=Role.AGENT)  # noqa: S106
        for n in range(5)
    ]
    client = Client()
    client.force_login(agents[0])

    seed(arguments.baseline_tickets, agents=agents, rng=rng)
    baseline = run(f"{arguments.baseline_tickets}", client, arguments.repeat, print)
    started = time.perf_counter()
    seed(arguments.tickets, agents=agents, rng=rng)
    print(f"seeded {Ticket.objects.count()} tickets in {time.perf_counter() - started:.1f} s")
    loaded = run(f"{arguments.tickets}", client, arguments.repeat, print)
    print("\nratio (p50 with the full set / p50 with the baseline set):")
    for name in PAGES:
        ratio = statistics.median(loaded[name]) / statistics.median(baseline[name])
        print(f"  {name:<16} x{ratio:.2f}")


if __name__ == "__main__":
    main()
