"""The insights page with a million tickets: how long beat's daily figures take to compute,
and how long the page takes to render from them, next to computing the figures at view time
(the scan the roll-up avoids), in the same run.

    .venv/bin/python benchmarks/insights.py [--tickets 1000000] [--days 90] [--runs 20]

On a fresh database (`bench_insights`), one ticket with its customer message, its draft
and its model call is written through the services; it is then copied in SQL into
`--tickets` tickets spread over `--days` days (decisions, reasons, intents, confidences,
stage timings and costs varied by row number), with a message, a draft and a model call
each. Prints: rows written and the time to write them; `figures_refresh` for 2 days (what
beat does every few minutes) and for all days; the page (`GET /inbox/insights/?days=30` and
`?days=90`, signed in) p50/p95/p99 over --runs; and the page's figures computed from the
tickets for 30 days instead (the baseline), once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


DECISIONS = "'auto_sent', 'auto_sent', 'needs_review', 'handed_off'"
REASONS = "'', '', 'low_confidence', 'asked_for_human'"
PASSWORD = "bench-pw-1234"


def columns(cursor, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND column_name <> 'id' ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def copy_rows(cursor, table: str, template_id: int, source: str, overrides: dict) -> None:  # type: ignore[no-untyped-def]
    """INSERT into `table` one row per row of `source` (a FROM clause that names the
    template `t`), every column from the template row unless `overrides` gives its SQL."""
    names = columns(cursor, table)
    values = [overrides.get(name, f't."{name}"') for name in names]
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(chr(34) + n + chr(34) for n in names)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM {source} AND t.id = {int(template_id)}"
    )


def seed(tickets: int, days: int) -> None:
    from decimal import Decimal

    from django.db import connection

    from apps.copilot.models import Draft
    from apps.llm.models import LLMCall
    from apps.tickets.models import Channel
    from apps.tickets.services import Actor, customer_resolve, ticket_create

    customer = customer_resolve(email="bench@example.com", name="Bench")
    ticket, message = ticket_create(
        customer=customer, body="Where is my parcel?", channel=Channel.WIDGET,
        actor=Actor.for_customer(customer),
    )  # fmt: skip
    draft = Draft.objects.create(
        ticket=ticket, message=message, decision="auto_sent", status="auto_sent",
        body="It ships tomorrow.", intent="track_order", confidence=0.95,
        stage_timings={"guard": 3.1, "triage": 31.0, "retrieve": 11.0, "draft": 19.0,
                       "validate": 2.0, "total": 70.0},
    )  # fmt: skip
    call = LLMCall.objects.create(
        purpose="draft", alias="draft-fast", model="openai/gpt-4o-mini", status="succeeded",
        cost_usd=Decimal("0.0004"), ticket_id=ticket.pk, input_tokens=900, output_tokens=120,
    )  # fmt: skip
    with connection.cursor() as cursor:
        when = f"now() - ((g % {days}) * interval '1 day') - ((g % 86400) * interval '1 second')"
        copy_rows(cursor, "tickets_ticket", ticket.pk,
                  f"tickets_ticket t, generate_series(1, {tickets}) g WHERE true",
                  {"created_at": when, "updated_at": when, "status_changed_at": when,
                   "last_customer_message_at": when,
                   "status": "CASE WHEN g % 3 = 0 THEN 'resolved' ELSE 'handed_off' END",
                   "resolved_at": f"CASE WHEN g % 3 = 0 THEN {when} END",
                   "subject": "'Question ' || g"})  # fmt: skip
        copy_rows(cursor, "tickets_message", message.pk,
                  f"tickets_message t, tickets_ticket k WHERE k.id > {ticket.pk}",
                  {"ticket_id": "k.id", "created_at": "k.created_at",
                   "channel": "(ARRAY['widget','email','api'])[1 + k.id % 3]"})  # fmt: skip
        copy_rows(cursor, "copilot_draft", draft.pk,
                  f"copilot_draft t, tickets_message m WHERE m.id > {message.pk}",
                  {"ticket_id": "m.ticket_id", "message_id": "m.id",
                   "created_at": "m.created_at", "updated_at": "m.created_at",
                   "decision": f"(ARRAY[{DECISIONS}])[1 + m.id % 4]",
                   "reason": f"(ARRAY[{REASONS}])[1 + m.id % 4]",
                   "intent": "'intent_' || (m.id % 40)",
                   "confidence": "(m.id % 100) / 100.0",
                   "stage_timings": "jsonb_build_object('triage', 20 + m.id % 30, 'retrieve', "
                                    "5 + m.id % 20, 'draft', 10 + m.id % 400, 'total', "
                                    "40 + m.id % 450)"})  # fmt: skip
        copy_rows(
            cursor,
            "llm_llmcall",
            call.pk,
            f"llm_llmcall t, tickets_ticket k WHERE k.id > {ticket.pk}",
            {"ticket_id": "k.id", "created_at": "k.created_at"},
        )
        for table in ("tickets_ticket", "tickets_message", "copilot_draft", "llm_llmcall"):
            cursor.execute(f"ANALYZE {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    from knowledge_bench_db import database_setup

    os.environ.setdefault("DESKPILOT_HTTPS", "false")  # the test client speaks plain HTTP
    database_setup("insights")
    from django.core.management import call_command
    from django.test import Client
    from percentiles import percentile

    from apps.accounts.models import Role
    from apps.accounts.services import user_create
    from apps.operations.insights import insights
    from apps.operations.models import DailyFigures
    from apps.operations.rollups import day_figures, figures_refresh
    from apps.tickets.models import Ticket

    call_command("collectstatic", "--noinput", verbosity=0)  # the page's hashed static names
    started = time.perf_counter()
    seed(options.tickets, options.days)
    print(f"tickets: {Ticket.objects.count()} written in {time.perf_counter() - started:.0f} s "
          f"over {options.days} days (each with a message, a draft and a model call)")  # fmt: skip
    started = time.perf_counter()
    figures_refresh(days=2)
    print(f"figures_refresh(days=2), beat's few-minute job: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    figures_refresh(days=options.days)
    backfill = time.perf_counter() - started
    print(f"figures_refresh(days={options.days}), a backfill: {backfill:.1f} s "
          f"({DailyFigures.objects.count()} day rows)")  # fmt: skip
    client = Client(HTTP_HOST="localhost")
    client.force_login(user_create(username="lead", password=PASSWORD, role=Role.AGENT))
    for days in (30, 90):
        timings = []
        for _ in range(options.runs + 1):
            started = time.perf_counter()
            response = client.get(f"/inbox/insights/?days={days}")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        timings = timings[1:]  # the first pays template compilation
        print(f"page ?days={days}: p50 {percentile(timings, 0.5):.1f} ms, "
              f"p95 {percentile(timings, 0.95):.1f} ms, p99 {percentile(timings, 0.99):.1f} ms "
              f"({options.runs} runs)")  # fmt: skip
    started = time.perf_counter()
    today = insights(days=1)["series"]["days"][0]
    from datetime import date, timedelta

    for offset in range(30):
        day_figures(date.fromisoformat(today) - timedelta(days=offset))
    scan = (time.perf_counter() - started) * 1000
    print(f"baseline, the 30 days' figures computed from the tickets at view time: {scan:.0f} ms")


if __name__ == "__main__":
    main()
