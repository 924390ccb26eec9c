"""Knowledge gaps: questions the demo's knowledge base does not answer go through the real
pipeline, agents answer them, and the clustering (`knowledge_gaps_refresh`) is scored
against the questions' true topics.

    .venv/bin/python benchmarks/knowledge_gaps.py [--banking77-intents 8] [--per-intent 6]
        [--seed 1] [--distances 0.3,0.4,0.5,0.6]

Two sets, each posted as tickets on a fresh database with the demo loaded:
- the demo's own (fixtures/demo/gaps/questions.jsonl: six topics the demo shop's knowledge
  base lacks, five questions each, and four one-off questions; written for the demo), whose
  report is printed as `manage.py knowledge_gaps` prints it;
- real customer language: Banking77 questions of intents the demo shop has no article for
  (a bank's questions to a home-goods shop: every one is a gap), sampled with --seed.

A third set checks the coverage filter: questions the demo's articles answer, which an agent
answered by retelling the article; none should be kept as evidence.

Scores per clustering distance: purity (questions in gaps that share their gap's majority
topic), topics found (topics with at least KNOWLEDGE_GAP_MIN_TICKETS questions that are the
majority of some gap), gaps per found topic (fragmentation), one-off questions in gaps.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
ROOT = BENCH.parent
DEMO = ROOT / "fixtures/demo"
BANKING77 = ROOT.parent / "shared/data/banking77/train.csv"


def setup() -> None:
    from apps.copilot.demo import demo_setup
    from apps.knowledge.imports import kb_import

    kb_import(paths=[DEMO / "kb"], source_name="demo")
    demo_setup(
        intents=DEMO / "triage/intents.csv",
        train=DEMO / "triage/train.csv",
        calibration=DEMO / "copilot/calibration.json",
    )


def demo_rows() -> list[dict]:
    with (DEMO / "gaps/questions.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def banking_rows(intents: int, per_intent: int, seed: int) -> list[dict]:
    by_intent: dict[str, list[str]] = {}
    with BANKING77.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_intent.setdefault(row["category"], []).append(row["text"])
    rng = random.Random(seed)
    chosen = rng.sample(sorted(by_intent), intents)
    return [
        {"topic": intent, "question": text,
         "answer": f"(an agent's answer about {intent.replace('_', ' ')})"}
        for intent in chosen for text in rng.sample(by_intent[intent], per_intent)
    ]  # fmt: skip


def covered_rows(count: int, seed: int) -> list[dict]:
    """Questions the demo's articles answer, which an agent answered by retelling the article
    (its first 400 characters after the title): covered, never a gap."""
    with (DEMO / "gold/retrieval.tsv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    rng = random.Random(seed)
    picked = rng.sample(rows, count)
    out = []
    for row in picked:
        text = (DEMO / "kb" / row["expected"]).read_text(encoding="utf-8")
        body = text.split("---", 2)[-1] if text.startswith("---") else text
        lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        out.append(
            {"topic": "covered", "question": row["question"], "answer": " ".join(lines)[:400]}
        )
    return out


def post_and_answer(rows: list[dict], tag: str) -> dict[int, str]:
    """Each question as a ticket through the pipeline; an agent answers what the copilot
    could not (rejecting a draft waiting for review first). {message id: topic}."""
    from apps.copilot.models import DraftStatus
    from apps.copilot.services import pipeline_run
    from apps.feedback.drafts import draft_reject_recorded
    from apps.tickets.models import AuthorKind, Channel
    from apps.tickets.services import Actor, customer_resolve, message_add, ticket_create

    topics, outcomes = {}, Counter()
    for index, row in enumerate(rows):
        customer = customer_resolve(email=f"{tag}{index}@example.com")
        ticket, message = ticket_create(
            customer=customer, body=row["question"], channel=Channel.API, actor=Actor.system()
        )
        draft = pipeline_run(message_id=message.pk)
        outcomes[draft.status if draft else "none"] += 1
        if draft is not None and draft.status == DraftStatus.AUTO_SENT:
            continue  # answered from an article (rightly or not): no evidence of a gap
        if draft is not None and draft.status == DraftStatus.PENDING:
            draft_reject_recorded(draft=draft, user=None, reason="does not answer it")
        message_add(
            ticket=ticket, author_kind=AuthorKind.AGENT, body=row["answer"], actor=Actor.system()
        )
        topics[message.pk] = row["topic"]
    print(
        f"  {tag}: {len(rows)} questions; drafts {dict(outcomes)}; {len(topics)} answered by agents"
    )
    return topics


def score(topics: dict[int, str], minimum: int) -> dict:
    from apps.evaluation.models import KnowledgeGap

    gaps = [g for g in KnowledgeGap.objects.all() if any(m in topics for m in g.message_ids)]
    in_gaps = majority_total = one_offs = 0
    majorities: Counter = Counter()
    for gap in gaps:
        labels = [topics[m] for m in gap.message_ids if m in topics]
        top, count = Counter(labels).most_common(1)[0]
        in_gaps += len(labels)
        majority_total += count
        one_offs += labels.count("") + labels.count("covered")
        if top:
            majorities[top] += 1
    eligible = {
        t for t, n in Counter(topics.values()).items() if t and t != "covered" and n >= minimum
    }
    found = eligible & set(majorities)
    return {
        "gaps": len(gaps),
        "purity": round(majority_total / in_gaps, 3) if in_gaps else None,
        "topics_found": f"{len(found)}/{len(eligible)}",
        "gaps_per_topic": round(sum(majorities[t] for t in found) / len(found), 2)
        if found
        else None,
        "one_offs_or_covered_in_gaps": one_offs,
        "questions_in_gaps": f"{in_gaps}/{len(topics)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--banking77-intents", type=int, default=8)
    parser.add_argument("--per-intent", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--distances", default="0.3,0.4,0.5,0.6,0.7")
    arguments = parser.parse_args()
    from knowledge_bench_db import database_setup

    database_setup("knowledge_gaps", redis=True)
    from django.conf import settings

    from apps.evaluation.gaps import knowledge_gap_report, knowledge_gaps_refresh
    from apps.evaluation.models import KnowledgeGap

    setup()
    sets = {
        "demo": post_and_answer(demo_rows(), "demo"),
        "banking77": post_and_answer(
            banking_rows(arguments.banking77_intents, arguments.per_intent, arguments.seed), "b77"
        ),
        "covered": post_and_answer(covered_rows(16, arguments.seed), "covered"),
    }
    shipped = settings.KNOWLEDGE_GAP_DISTANCE
    print(f"\nclustering distance (shipped {shipped}); both sets clustered together")
    for distance in [float(d) for d in arguments.distances.split(",")]:
        settings.KNOWLEDGE_GAP_DISTANCE = distance
        KnowledgeGap.objects.all().delete()
        started = time.perf_counter()
        counts = knowledge_gaps_refresh()
        seconds = time.perf_counter() - started
        for name, topics in sets.items():
            print(
                f"  {distance:.2f} {name:<10} {score(topics, settings.KNOWLEDGE_GAP_MIN_TICKETS)}"
            )
        print(
            f"  {distance:.2f} refresh: {counts['evidence']} questions kept as evidence (of "
            f"{sum(len(t) for t in sets.values())} answered by agents) in {seconds:.2f} s"
        )
    settings.KNOWLEDGE_GAP_DISTANCE = shipped
    KnowledgeGap.objects.all().delete()
    knowledge_gaps_refresh()
    print("\nthe report at the shipped distance (manage.py knowledge_gaps):")
    print(knowledge_gap_report(limit=30))


if __name__ == "__main__":
    main()
