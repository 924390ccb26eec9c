"""The insights page in Chromium: its charts are drawn by the vendored uPlot, no errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.llm.models import LLMCall
from apps.operations.rollups import figures_refresh
from tests.browser.conftest import sign_in
from tests.inbox.factories import conversation_create


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_lead_sees_the_insights_charts_drawn(site, new_page, agent_user):
    # given: a few conversations and some spend today, rolled up as beat does
    for index in range(3):
        conversation_create(subject=f"Question {index}")
    LLMCall.objects.create(
        purpose="draft", alias="draft-fast", model="m", status="succeeded", cost_usd=Decimal("0.2")
    )
    figures_refresh(days=2)
    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # when
    sign_in(page, site.url, "agnes")
    page.get_by_role("link", name="Insights").click()
    # then: four charts drawn on canvases, the tables beside them, no script error
    expect(page.get_by_role("heading", name="Insights")).to_be_visible()
    expect(page.locator(".chart[data-drawn='true'] canvas")).to_have_count(4)
    expect(page.get_by_role("heading", name="Latency per stage (ms)")).to_be_visible()
    assert errors == []
