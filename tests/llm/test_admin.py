"""The LLMCall admin: a read-only log with filters."""

from __future__ import annotations

import pytest

from tests.llm.factories import LLMCallFactory

pytestmark = pytest.mark.django_db


def test_llm_call_admin_lists_and_filters_but_cannot_add_or_change(admin_client):
    # given
    call = LLMCallFactory(model="openai/gpt-4o-mini")
    LLMCallFactory(model="local/extractive", status="failed", error_type="Timeout")
    # when
    listing = admin_client.get("/admin/llm/llmcall/?status__exact=succeeded")
    add = admin_client.get("/admin/llm/llmcall/add/")
    change = admin_client.post(f"/admin/llm/llmcall/{call.id}/change/", {"model": "x"})
    # then
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert add.status_code == 403
    assert change.status_code == 403
    call.refresh_from_db()
    assert call.model == "openai/gpt-4o-mini"
