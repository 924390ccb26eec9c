from __future__ import annotations

from decimal import Decimal

import factory

from apps.llm.models import LLMCall


class LLMCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LLMCall

    purpose = "draft"
    alias = "draft-fast"
    served_alias = "draft-fast"
    model = "openai/gpt-4o-mini"
    deployment_id = "draft-fast/0"
    status = LLMCall.Status.SUCCEEDED
    input_tokens = 100
    output_tokens = 50
    cost_usd = Decimal("0.01")
    latency_ms = 400
