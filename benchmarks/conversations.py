"""Follow-ups in a conversation: does the copilot's draft for a customer's second message
cite the right article first, and are the follow-ups it sends on its own right?

    .venv/bin/python benchmarks/conversations.py [--dataset bank|birch] [--split dev|heldout|all]
        [--per-row 2] [--both-open] [--show-wrong]

A fresh database with a Banking77 help center set up as `copilot_pipeline.py --dataset` does
(its KB imported, the classifier trained on Banking77 minus a held-out slice of 4 questions
per intent, no admin links, the shipped calibration). Each row of
fixtures/conversations/followups.tsv is a two-turn conversation: a held-out Banking77
question of `first_intent`, then `followup` (hand-written; `{question}` is filled with a
held-out question of `expected_intent`, for a change of subject). The follow-up is right when
its draft's first citation is the article the help center's intent_articles.csv gives for
`expected_intent`. Each row is played `--per-row` times with different first questions.

The first message is posted and drafted (auto-sent, or handed to a person), then the
follow-up is added to the same ticket and drafted; the ticket's current draft is read, as
`GET /api/v1/tickets/{id}` shows it. `--both-open`: the follow-up arrives before the first
message is drafted (the first is never answered on its own: both questions are open).

Kinds: `reference` (elliptical, about a related topic: "is there a fee for that?"),
`continue` (elliptical, same topic), `detail` (adds a detail), `switch` (a new subject).
Rows of split `dev` were used to design the context stage; `heldout` rows were written at
the same time and kept apart: report both.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from copilot_pipeline import (
    BANKING77_HELP_CENTERS,
    CALIBRATION_FIXTURE,
    ROOT,
    bank_setup,
    bank_split,
    calibration_store,
    services_start,
)
from percentiles import percentile

FOLLOWUPS = ROOT / "fixtures/conversations/followups.tsv"


@dataclass(frozen=True)
class Conversation:
    split: str
    kind: str
    first: str
    first_article: str
    followup: str
    expected_intent: str
    expected_article: str


def conversations_read(dataset: str, split: str, per_row: int) -> list[Conversation]:
    folder, salt = BANKING77_HELP_CENTERS[dataset]
    _, held = bank_split(folder, salt)
    questions: dict[str, list[str]] = defaultdict(list)
    for text, intent, _ in held:
        questions[intent].append(text)
    with (folder / "intent_articles.csv").open(newline="", encoding="utf-8") as handle:
        articles = {row["intent"]: row["article"] for row in csv.DictReader(handle)}
    with FOLLOWUPS.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if split in ("all", r["split"])]
    conversations = []
    for row in rows:
        for k in range(per_row):
            new_topic = questions[row["expected_intent"]][
                (k + 2) % len(questions[row["expected_intent"]])
            ]
            conversations.append(
                Conversation(
                    split=row["split"],
                    kind=row["kind"],
                    first=questions[row["first_intent"]][k],
                    first_article=articles.get(row["first_intent"], ""),
                    followup=row["followup"].replace("{question}", new_topic),
                    expected_intent=row["expected_intent"],
                    expected_article=articles.get(row["expected_intent"], ""),
                )
            )
    return conversations


def first_citation(draft) -> str:  # type: ignore[no-untyped-def]
    return draft.citations[0]["external_id"] if draft is not None and draft.citations else ""


def play(conversation: Conversation, *, both_open: bool) -> dict:
    from apps.copilot.selectors import draft_current_for_ticket
    from apps.copilot.services import pipeline_run
    from apps.tickets.models import AuthorKind, Channel
    from apps.tickets.services import Actor, customer_resolve, message_add, ticket_create

    customer = customer_resolve(email="conversations@example.com", name="Bench")
    actor = Actor.for_customer(customer)
    ticket, first = ticket_create(
        customer=customer, body=conversation.first, channel=Channel.API, actor=actor
    )
    first_draft = None
    if not both_open:
        first_draft = pipeline_run(message_id=first.id)
    followup = message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body=conversation.followup,
        channel=Channel.API,
        actor=actor,
    )
    if both_open:
        pipeline_run(message_id=first.id)  # a newer message arrived: not acted on
    started = time.perf_counter()
    pipeline_run(message_id=followup.id)
    wall = (time.perf_counter() - started) * 1000
    draft = draft_current_for_ticket(ticket_id=ticket.id)
    return {
        "conversation": conversation,
        "first_decision": first_draft.decision if first_draft is not None else "",
        "first_right": first_citation(first_draft) == conversation.first_article,
        "draft": draft,
        "answers_followup": draft is not None and draft.message_id == followup.id,
        "cited": first_citation(draft),
        "decision": draft.decision if draft is not None else "",
        "reason": draft.reason if draft is not None else "",
        "wall_ms": wall,
    }


def report(label: str, results: list[dict], *, show_wrong: bool) -> None:
    answerable = [r for r in results if r["conversation"].expected_article]
    right = [r for r in answerable if r["cited"] == r["conversation"].expected_article]
    auto = [r for r in results if r["decision"] == "auto_sent"]
    auto_right = [
        r
        for r in auto
        if r["conversation"].expected_article and r["cited"] == r["conversation"].expected_article
    ]
    share = len(right) / len(answerable) if answerable else float("nan")
    # Wilson-free binomial error: enough to read the figure's uncertainty.
    error = 1.96 * (share * (1 - share) / len(answerable)) ** 0.5 if answerable else 0
    precision = f"{len(auto_right) / len(auto):.3f}" if auto else "n/a"
    print(
        f"{label:28s} follow-ups {len(results):3d}: right article first {len(right)}/"
        f"{len(answerable)} ({share:.1%} +/- {error:.1%}); auto-sent {len(auto)}, right "
        f"{len(auto_right)} (precision {precision}); "
        f"drafts answering the follow-up {sum(r['answers_followup'] for r in results)}"
    )
    if show_wrong:
        for r in answerable:
            if r["cited"] != r["conversation"].expected_article:
                c = r["conversation"]
                print(
                    f"    wrong [{c.kind}] {c.first[:50]!r} -> {c.followup[:60]!r}: expected "
                    f"{c.expected_article}, cited {r['cited'] or '-'} ({r['decision']}"
                    f"{'/' + r['reason'] if r['reason'] else ''})"
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=tuple(BANKING77_HELP_CENTERS), default="bank")
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="all")
    parser.add_argument("--per-row", type=int, default=2)
    parser.add_argument("--both-open", action="store_true")
    parser.add_argument("--show-wrong", action="store_true")
    parser.add_argument("--dump", type=Path, help="write each follow-up's outcome as JSON lines")
    arguments = parser.parse_args()
    services_start(f"conversations_{arguments.dataset}")
    import json

    from apps.copilot.models import CopilotPolicy

    workdir = Path(os.environ["DESKPILOT_HOME"]).resolve()
    bank_setup(workdir, arguments.dataset)
    CopilotPolicy.objects.update_or_create(singleton=True, defaults={"cache_enabled": False})
    shipped = json.loads(CALIBRATION_FIXTURE.read_text())
    calibration_store(shipped["weights"], shipped["auto_send_threshold"], "shipped")
    conversations = conversations_read(arguments.dataset, arguments.split, arguments.per_row)
    started = time.perf_counter()
    results = [play(c, both_open=arguments.both_open) for c in conversations]
    print(
        f"\n{arguments.dataset}, {len(results)} conversations "
        f"({'both questions open' if arguments.both_open else 'first answered or handed off'}),"
        f" played in {time.perf_counter() - started:.0f} s"
    )
    firsts = [r for r in results if r["first_decision"]]
    if firsts:
        first_auto = [r for r in firsts if r["first_decision"] == "auto_sent"]
        print(
            f"first messages: auto-sent {len(first_auto)}/{len(firsts)}, right "
            f"{sum(r['first_right'] for r in first_auto)}; decisions "
            f"{dict(Counter(r['first_decision'] for r in firsts))}"
        )
    for split in ("dev", "heldout"):
        part = [r for r in results if r["conversation"].split == split]
        if not part:
            continue
        report(f"{split}: all", part, show_wrong=arguments.show_wrong)
        for kind in ("reference", "continue", "detail", "switch"):
            kind_part = [r for r in part if r["conversation"].kind == kind]
            if kind_part:
                report(f"{split}: {kind}", kind_part, show_wrong=False)
    if arguments.dump:
        with arguments.dump.open("w") as handle:
            for r in results:
                c, draft = r["conversation"], r["draft"]
                handle.write(
                    json.dumps(
                        {
                            **{k: v for k, v in c.__dict__.items()},
                            "cited": r["cited"],
                            "decision": r["decision"],
                            "reason": r["reason"],
                            "confidence": draft.confidence if draft is not None else None,
                            "intent": draft.intent if draft is not None else "",
                            "context": draft.context if draft is not None else {},
                            "features": draft.confidence_features if draft is not None else {},
                            "first_decision": r["first_decision"],
                        }
                    )
                    + "\n"
                )
    reasons = Counter(r["reason"] for r in results if r["decision"] != "auto_sent")
    print(f"follow-up decisions: {dict(Counter(r['decision'] for r in results))}")
    print(f"follow-up reasons: {dict(reasons)}")
    walls = [r["wall_ms"] for r in results]
    print(
        f"follow-up pipeline_run wall: p50 {statistics.median(walls):.1f} ms, "
        f"p95 {percentile(walls, 0.95):.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
