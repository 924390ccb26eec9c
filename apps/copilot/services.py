"""The copilot pipeline. For now, one step: record that a customer message awaits triage."""

from __future__ import annotations

from apps.tickets.models import PipelineStatus
from apps.tickets.services import message_pipeline_advance


def pipeline_run(*, message_id: int) -> bool:
    """Take a customer message into the pipeline; True when this run took it.

    Idempotent: a compare-and-set from `unscheduled`/`queued` to `awaiting_triage`, so a
    second run (a redelivered or re-swept task) changes nothing and returns False, as does a
    message that no longer exists.
    """
    return message_pipeline_advance(
        message_id=message_id,
        from_statuses=(PipelineStatus.UNSCHEDULED, PipelineStatus.QUEUED),
        to_status=PipelineStatus.AWAITING_TRIAGE,
    )
