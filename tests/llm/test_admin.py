"""The LLMCall admin: a read-only log with filters."""

from __future__ import annotations

import pytest

from tests.llm.factories import LLMCallFactory

pytestmark = pytest.mark.django_db


def test_llm_call_admin_lists_and_filters_but_cannot_add_or_change(admin_client, settings):
    # given (secure=True and plain static storage: config/__init__ imports celery, which sets
    # DJANGO_SETTINGS_MODULE=config.settings before pytest-django reads test_settings)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call = LLMCallFactory(model="openai/gpt-4o-mini")
    LLMCallFactory(model="local/extractive", status="failed", error_type="Timeout")
    # when
    listing = admin_client.get("/admin/llm/llmcall/?status__exact=succeeded", secure=True)
    add = admin_client.get("/admin/llm/llmcall/add/", secure=True)
    change = admin_client.post(f"/admin/llm/llmcall/{call.id}/change/", {"model": "x"}, secure=True)
    # then
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert add.status_code == 403
    assert change.status_code == 403
    call.refresh_from_db()
    assert call.model == "openai/gpt-4o-mini"
