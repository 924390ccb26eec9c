"""The copilot policy's per-intent switches."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.copilot.models import CopilotPolicy
from apps.core.exceptions import ConflictError, ValidationError


@transaction.atomic
def policy_auto_send_disable(*, intent: str) -> None:
    """Stop auto-sending drafts for `intent`: every draft of it goes to an agent.

    Written in the policy's per-intent overrides (read on every decision). The row is locked
    and its JSON merged, so a concurrent admin edit of another intent is not lost.
    Raises ConflictError when auto-send is already off for the intent.
    """
    if not intent:
        raise ValidationError("an intent is needed to disable auto-send for", field="intent")
    policy, _ = CopilotPolicy.objects.select_for_update().get_or_create(singleton=True)
    overrides = dict(policy.intent_overrides or {})
    current = dict(overrides.get(intent) or {})
    if current.get("auto_send") is False:
        raise ConflictError(f"auto-send is already off for {intent!r}", field="intent")
    overrides[intent] = {**current, "auto_send": False}
    CopilotPolicy.objects.filter(pk=policy.pk).update(
        intent_overrides=overrides, updated_at=timezone.now()
    )


@transaction.atomic
def policy_auto_send_pause(*, paused: bool) -> bool:
    """The kill switch: stop (or resume) every auto-send at once. Drafts are still written,
    for agents, with reason auto_send_paused. Every worker reads the policy row for each
    message, so it takes effect with the next decision on every worker. Returns whether it
    was paused before."""
    policy, _ = CopilotPolicy.objects.select_for_update().get_or_create(singleton=True)
    was = policy.auto_send_paused
    CopilotPolicy.objects.filter(pk=policy.pk).update(
        auto_send_paused=paused, updated_at=timezone.now()
    )
    return was
