"""Versions of the draft prompt: the default seeded once, new versions published."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.copilot.models import PromptTemplate
from apps.copilot.prompts import DEFAULT_DRAFT_PROMPT
from apps.copilot.selectors import DRAFT_PURPOSE, prompt_active
from apps.core.exceptions import ValidationError
from apps.core.gate import activation_gate


def prompt_template_ensure_default() -> PromptTemplate:
    """The active draft prompt; seeds version 1 (the default prompt) when there is none."""
    active = prompt_active()
    if active is not None:
        return active
    with transaction.atomic():
        if PromptTemplate.objects.filter(purpose=DRAFT_PURPOSE).exists():
            latest = PromptTemplate.objects.filter(purpose=DRAFT_PURPOSE).order_by("-version")[0]
            PromptTemplate.objects.filter(pk=latest.pk).update(is_active=True)
            latest.refresh_from_db()
            return latest
        try:
            return PromptTemplate.objects.create(
                purpose=DRAFT_PURPOSE,
                version=1,
                body=DEFAULT_DRAFT_PROMPT,
                is_active=True,
                note="Deskpilot's default",
            )
        except IntegrityError:
            pass
    return prompt_active()  # type: ignore[return-value]  # a concurrent seeder won


def prompt_template_publish(
    *,
    body: str,
    purpose: str = DRAFT_PURPOSE,
    note: str = "",
    activate: bool = True,
    override_reason: str = "",
    requested_by: str = "",
) -> PromptTemplate:
    """A new version of the prompt, stored, then (with `activate`) made the active one
    through the regression gate (drafts record the version used). A refusal
    (ActivationRefusedError) leaves the new version stored and inactive."""
    if not body.strip():
        raise ValidationError("a prompt needs a body", field="body")
    with transaction.atomic():
        latest = (
            PromptTemplate.objects.filter(purpose=purpose).aggregate(v=Max("version"))["v"] or 0
        )
        prompt = PromptTemplate.objects.create(
            purpose=purpose, version=latest + 1, body=body, is_active=False, note=note
        )
    if activate:
        prompt = prompt_template_activate(
            prompt=prompt, override_reason=override_reason, requested_by=requested_by
        )
    return prompt


def prompt_template_activate(
    *, prompt: PromptTemplate, override_reason: str = "", requested_by: str = ""
) -> PromptTemplate:
    """Make this prompt version the active one of its purpose, once the regression gate
    found it not worse than the active one on the gold sets (draft prompts only: the gold
    sets measure drafts)."""
    gate = activation_gate()
    active = prompt_active(purpose=prompt.purpose)
    if gate is not None and prompt.purpose == DRAFT_PURPOSE and active and active != prompt:
        gate(
            kind="prompt",
            version=prompt.version,
            override_reason=override_reason,
            requested_by=requested_by,
        )
    with transaction.atomic():
        PromptTemplate.objects.filter(purpose=prompt.purpose, is_active=True).update(
            is_active=False
        )
        PromptTemplate.objects.filter(pk=prompt.pk).update(is_active=True)
    prompt.refresh_from_db()
    return prompt
