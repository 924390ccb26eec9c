"""Versions of the draft prompt: the default seeded once, new versions published."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.copilot.models import PromptTemplate
from apps.copilot.prompts import DEFAULT_DRAFT_PROMPT
from apps.copilot.selectors import DRAFT_PURPOSE, prompt_active
from apps.core.exceptions import ValidationError


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


@transaction.atomic
def prompt_template_publish(
    *, body: str, purpose: str = DRAFT_PURPOSE, note: str = ""
) -> PromptTemplate:
    """A new version of the prompt, made the active one (drafts record the version used)."""
    if not body.strip():
        raise ValidationError("a prompt needs a body", field="body")
    latest = PromptTemplate.objects.filter(purpose=purpose).aggregate(v=Max("version"))["v"] or 0
    PromptTemplate.objects.filter(purpose=purpose, is_active=True).update(is_active=False)
    return PromptTemplate.objects.create(
        purpose=purpose, version=latest + 1, body=body, is_active=True, note=note
    )
