"""The insights page: daily figures computed from the day's rows, read by the page."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.copilot.models import Draft
from apps.copilot.services import pipeline_run
from apps.feedback.models import RatingValue
from apps.feedback.services import reply_rate
from apps.llm.models import LLMCall
from apps.operations.insights import insights, quantile
from apps.operations.models import DailyFigures
from apps.operations.rollups import BUCKET_COUNT, bucket_of, figures_refresh
from apps.tickets.models import Message
from apps.tickets.services import Actor, ticket_resolve
from tests.copilot.conftest import customer_ticket

QUESTIONS = [
    "How do I reset my password? The link never arrives.",
    "Where is my refund? I returned the parcel two weeks ago.",
    "I want to speak to a human please",
    "Someone took 300 pounds from my card and it was not me",
]


def test_stage_quantiles_read_from_log_buckets_are_within_12_percent():
    # given: 1 000 latencies spread from 2 ms to 2 s
    values = [2 * 1.007**i for i in range(1000)]
    histogram = [0] * BUCKET_COUNT
    for value in values:
        histogram[bucket_of(value)] += 1
    # when / then
    for share in (0.5, 0.95, 0.99):
        exact = sorted(values)[int(share * len(values)) - 1]
        assert abs(quantile(histogram, share) - exact) / exact < 0.12


@pytest.mark.django_db
def test_the_days_figures_add_up_to_its_drafts_and_the_page_shows_them(copilot_ready, client):
    # given: a day's drafts, a judged auto-sent reply, spend, a resolved ticket
    for question in QUESTIONS:
        _, message = customer_ticket(question)
        pipeline_run(message_id=message.id)
    drafts = list(Draft.objects.all())
    auto_sent = [d for d in drafts if d.decision == "auto_sent"]
    assert auto_sent, "the reset-password question is answered on its own"
    reply_rate(message=Message.objects.get(pk=auto_sent[0].sent_message_id), value=RatingValue.UP)
    LLMCall.objects.create(
        purpose="draft", alias="draft-fast", model="m", status="succeeded", cost_usd=Decimal("0.5")
    )
    ticket_resolve(ticket=drafts[0].ticket, actor=Actor.system())
    # when: beat computes today's figures
    figures_refresh(days=2)
    # then: they add up to the rows
    figures = DailyFigures.objects.get(day=timezone.now().date()).figures
    assert figures["drafts"] == len(drafts)
    assert figures["decisions"] == dict(Counter(d.decision for d in drafts))
    assert sum(figures["stages"]["total"]) == len(drafts)
    assert (figures["auto_sent_judged"], figures["auto_sent_right"]) == (1, 1)
    assert figures["tickets_resolved"] == 1 and figures["cost_usd"] == 0.5
    assert figures["messages_by_channel"] == {"api": len(QUESTIONS)}
    # when: a signed-in agent opens the page
    user_create(username="lead", password="pw-lead-1234", role=Role.AGENT)
    client.login(username="lead", password="pw-lead-1234")
    response = client.get("/inbox/insights/?days=7")
    # then: the figures and the charts' data are on it
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="insights-series"' in page and "vendor/uplot/uPlot.iife.min.js" in page
    context = response.context
    assert context["totals"]["drafts"] == len(drafts)
    assert context["totals"]["cost_per_resolved"] == 0.5
    assert context["series"]["channels"]["api"][-1] == len(QUESTIONS)
    assert context["stages"][0]["stage"] == "total"


@pytest.mark.django_db
def test_the_page_needs_a_signed_in_user_and_shows_empty_days(client):
    # given: figures for one day a week ago only
    DailyFigures.objects.create(
        day=timezone.now().date() - timedelta(days=6),
        figures={"drafts": 3, "decisions": {"auto_sent": 3}},
        refreshed_at=timezone.now(),
    )
    # when
    anonymous = client.get("/inbox/insights/")
    reading = insights(days=7)
    # then
    assert anonymous.status_code == 302 and "/inbox/login/" in anonymous["Location"]
    assert reading["series"]["auto_send_rate"] == [1.0, None, None, None, None, None, None]
    assert reading["totals"]["auto_send_rate"] == 1.0
