"""What a draft adds to the Prometheus metrics (apps.core.metrics), read from the draft row
itself: counted once, when the row is written, after its transaction commits."""

from __future__ import annotations

from apps.copilot.models import Draft, HandoffReason
from apps.core import metrics

# Draft.validation's failed checks, as the output guard's verdicts.
_VALIDATION_FAILURES = (
    ("citations_valid", "invalid_citation"),
    ("links_valid", "foreign_link"),
    ("grounded", "ungrounded"),
)


def draft_metrics(draft: Draft) -> metrics.Batch:
    batch = metrics.Batch().inc(
        metrics.DRAFT_DECISIONS, decision=draft.decision, reason=draft.reason or ""
    )
    for stage, milliseconds in (draft.stage_timings or {}).items():
        if isinstance(milliseconds, int | float):
            batch.observe(metrics.PIPELINE_STAGE_DURATION, milliseconds / 1000, stage=stage)
    if draft.body and draft.model:
        batch.inc(metrics.REPLY_CACHE, outcome=draft.cache_hit or "miss")
    for check, verdict in guard_verdicts(draft):
        batch.inc(metrics.GUARD_VERDICTS, check=check, verdict=verdict)
    return batch


def guard_verdicts(draft: Draft) -> list[tuple[str, str]]:
    """(check, verdict) pairs of the input guard, the passages guard and the output checks
    that ran for this draft."""
    guard = draft.guard or {}
    verdicts: list[tuple[str, str]] = []
    if "error" in guard or draft.reason == HandoffReason.GUARD_FAILED:
        verdicts.append(("injection", "failed"))
    elif "injection" in guard:
        suspected = draft.reason == HandoffReason.INJECTION_SUSPECTED and not guard.get("passages")
        verdicts.append(("injection", "suspected" if suspected else "clear"))
    if "passages" in guard:
        verdicts.append(("passages", "planted" if guard["passages"] else "clear"))
    validation = draft.validation or {}
    if validation:
        failed = [verdict for key, verdict in _VALIDATION_FAILURES if validation.get(key) is False]
        failed += ["unsafe"] if validation.get("unsafe") else []
        verdicts += [("output", verdict) for verdict in failed] or [("output", "passed")]
    return verdicts


def draft_metrics_record(draft: Draft) -> None:
    """Count a draft just written (once its transaction commits)."""
    metrics.metrics_record(draft_metrics(draft))


def auto_send_metrics_record(*, channel: str) -> None:
    metrics.metrics_record(metrics.Batch().inc(metrics.AUTO_SENDS, channel=channel))
