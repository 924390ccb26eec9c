"""Did every customer message get exactly what it should? An audit of the pipeline's outcomes
over a set of tickets, or over the messages of a recent window: what `manage.py
pipeline_audit` prints for an operator after an incident, and what benchmarks/chaos.py checks
after killing workers, Redis and PostgreSQL.

Per customer message (the copilot's, not an agent's action):
- undecided: no draft yet and the pipeline not finished with it (still in flight, or lost);
- no reason: a draft not sent on its own whose reason is empty (every handoff says why; a
  database constraint too, copilot_draft_reason_unless_auto);
- duplicate replies: more copilot replies on a ticket than drafts the copilot auto-sent on
  it (the same answer sent twice), or an auto-sent draft with no reply (decided, never sent).
One draft per message and generation is a database constraint (copilot_draft_unique_generation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count

from apps.copilot.models import Decision, Draft, DraftStatus
from apps.tickets.models import AuthorKind, Message, PipelineStatus

FINISHED = (PipelineStatus.DONE, PipelineStatus.FAILED, PipelineStatus.NOT_APPLICABLE)


@dataclass
class Integrity:
    tickets: int = 0
    customer_messages: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    failed: int = 0  # handed to a person because the pipeline failed (a reason, not a loss)
    undecided: list[int] = field(default_factory=list)  # message ids
    no_reason: list[int] = field(default_factory=list)  # draft ids
    duplicate_replies: list[int] = field(default_factory=list)  # ticket ids
    sent_missing: list[int] = field(default_factory=list)  # draft ids

    @property
    def sound(self) -> bool:
        return not (self.undecided or self.no_reason or self.duplicate_replies or self.sent_missing)

    def lines(self) -> list[str]:
        decided = ", ".join(f"{name} {count}" for name, count in sorted(self.decisions.items()))
        return [
            f"tickets {self.tickets}, customer messages {self.customer_messages}",
            f"decided: {decided or 'none'} (pipeline failed, handed off: {self.failed})",
            f"undecided (no draft, not finished): {len(self.undecided)}"
            + _some(self.undecided, "message"),
            f"handed off without a reason: {len(self.no_reason)}" + _some(self.no_reason, "draft"),
            f"tickets with a reply sent twice: {len(self.duplicate_replies)}"
            + _some(self.duplicate_replies, "ticket"),
            f"auto-sent drafts with no reply: {len(self.sent_missing)}"
            + _some(self.sent_missing, "draft"),
        ]


def _some(ids: list[int], kind: str) -> str:
    return (
        f" ({kind}s {', '.join(map(str, ids[:10]))}{'…' if len(ids) > 10 else ''})" if ids else ""
    )


def pipeline_integrity(
    *, ticket_ids: Collection[int] | None = None, since: datetime | None = None
) -> Integrity:
    """The audit over `ticket_ids`, or over tickets with a customer message since `since`."""
    if ticket_ids is None:
        if since is None:
            raise ValueError("pipeline_integrity needs ticket_ids or since")
        ticket_ids = set(
            Message.objects.filter(created_at__gte=since, author_kind=AuthorKind.CUSTOMER)
            .values_list("ticket_id", flat=True)
            .distinct()
        )
    ticket_ids = list(ticket_ids)
    report = Integrity(tickets=len(ticket_ids))
    customer = Message.objects.filter(ticket_id__in=ticket_ids, author_kind=AuthorKind.CUSTOMER)
    report.customer_messages = customer.count()
    first_drafts = Draft.objects.filter(ticket_id__in=ticket_ids, generation=1)
    report.undecided = list(
        customer.exclude(pipeline_status__in=FINISHED)
        .exclude(pk__in=first_drafts.values("message_id"))
        .order_by("id")
        .values_list("id", flat=True)
    )
    for decision, status, count in first_drafts.values_list("decision", "status").annotate(
        count=Count("id")
    ):
        report.decisions[decision] += count
        if status == DraftStatus.FAILED:
            report.failed += count
    report.no_reason = list(
        first_drafts.exclude(decision=Decision.AUTO_SENT)
        .filter(reason="")
        .order_by("id")
        .values_list("id", flat=True)
    )
    report.sent_missing = list(
        first_drafts.filter(status=DraftStatus.AUTO_SENT, sent_message_id__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    auto_sent = Counter(
        dict(
            Draft.objects.filter(ticket_id__in=ticket_ids, status=DraftStatus.AUTO_SENT)
            .values_list("ticket_id")
            .annotate(count=Count("id"))
        )
    )
    replies = (
        Message.objects.filter(ticket_id__in=ticket_ids, author_kind=AuthorKind.COPILOT)
        .values_list("ticket_id")
        .annotate(count=Count("id"))
    )
    report.duplicate_replies = sorted(
        ticket_id for ticket_id, count in replies if count > auto_sent[ticket_id]
    )
    return report
