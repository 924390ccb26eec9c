"""Budgets: daily, monthly and per-ticket spend limits, checked before every call."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.llm.exceptions import BudgetExhausted
from apps.llm.models import LLMCall
from apps.llm.selectors import llm_spend
from apps.llm.services import budget_check, completion_create
from tests.llm.factories import LLMCallFactory
from tests.llm.test_gateway import MESSAGES, ok

pytestmark = pytest.mark.django_db


def backdate(call: LLMCall, **delta: float) -> None:
    LLMCall.objects.filter(id=call.id).update(created_at=timezone.now() - timedelta(**delta))


def test_spend_sums_today_this_month_and_the_ticket():
    # given
    LLMCallFactory(cost_usd=Decimal("0.10"), ticket_id=1)
    LLMCallFactory(cost_usd=Decimal("0.05"), ticket_id=2)
    old = LLMCallFactory(cost_usd=Decimal("1.00"), ticket_id=1)
    backdate(old, days=40)
    # when
    spend = llm_spend(ticket_id=1)
    # then
    assert spend.today_usd == Decimal("0.15")
    assert spend.month_usd in (Decimal("0.15"), Decimal("0.15"))  # the 40-day-old call is out
    assert spend.ticket_usd == Decimal("1.10")  # a ticket's budget covers its whole life


def test_ticket_budget_spent_refuses_the_call_without_reaching_the_provider(
    fakes, use_fakes, settings
):
    # given
    settings.LLM_BUDGET_TICKET_USD = 0.05
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    LLMCallFactory(cost_usd=Decimal("0.05"), ticket_id=9)
    # when
    with pytest.raises(BudgetExhausted) as raised:
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES, ticket_id=9)
    # then
    assert (raised.value.scope, raised.value.limit_usd) == ("ticket", 0.05)
    assert fast.hits == 0
    refused = LLMCall.objects.get(id=raised.value.llm_call_id)
    assert (refused.status, refused.cost_usd, refused.ticket_id) == ("budget_exhausted", 0, 9)
    assert refused.error_type == "BudgetExhausted"


def test_other_tickets_still_get_answers_when_one_ticket_is_over_budget(fakes, use_fakes, settings):
    # given
    settings.LLM_BUDGET_TICKET_USD = 0.05
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    LLMCallFactory(cost_usd=Decimal("0.05"), ticket_id=9)
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES, ticket_id=10)
    # then
    assert result.parsed is not None
    assert fast.hits == 1


def test_one_customer_over_their_daily_cap_is_refused_while_others_are_served(
    fakes, use_fakes, settings
):
    # given: a visitor who spent their day's cap over three conversations
    settings.LLM_BUDGET_CUSTOMER_DAILY_USD = 0.06
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    for ticket_id in (1, 2, 3):
        LLMCallFactory(cost_usd=Decimal("0.02"), ticket_id=ticket_id, customer_id=7)
    yesterday = LLMCallFactory(cost_usd=Decimal("5"), ticket_id=4, customer_id=8)
    backdate(yesterday, days=1)
    # when: they open a fourth conversation
    with pytest.raises(BudgetExhausted) as raised:
        completion_create(
            purpose="draft", alias="draft-fast", messages=MESSAGES, ticket_id=5, customer_id=7
        )
    # then: refused for them, with the scope named; another customer (yesterday's spend does
    # not count) is served
    assert raised.value.scope == "customer"
    served = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, ticket_id=6, customer_id=8
    )
    assert served.parsed is not None and fast.hits == 1


@pytest.mark.parametrize(
    ("setting", "scope"), [("LLM_BUDGET_DAILY_USD", "daily"), ("LLM_BUDGET_MONTHLY_USD", "monthly")]
)
def test_global_budget_spent_refuses_every_ticket(settings, setting, scope):
    # given
    setattr(settings, setting, 1.0)
    LLMCallFactory(cost_usd=Decimal("0.60"), ticket_id=1)
    LLMCallFactory(cost_usd=Decimal("0.40"), ticket_id=2)
    # when / then
    with pytest.raises(BudgetExhausted) as raised:
        budget_check(ticket_id=3)
    assert raised.value.scope == scope
    assert raised.value.spent_usd == 1.0


def test_yesterdays_spend_does_not_count_against_today(settings):
    # given
    settings.LLM_BUDGET_DAILY_USD = 1.0
    backdate(LLMCallFactory(cost_usd=Decimal("5.00")), days=1, minutes=1)
    # when / then: no exception
    budget_check(ticket_id=None)


def test_zero_limits_turn_budgets_off(settings):
    # given: limits are 0 (the test default) and a lot was spent
    LLMCallFactory(cost_usd=Decimal("500"), ticket_id=1)
    # when / then
    budget_check(ticket_id=1)


def test_the_days_spend_is_kept_in_redis_and_raised_by_each_logged_call(fakes, use_fakes, settings):
    from apps.core.metrics import redis_client
    from apps.llm.selectors import spend_key

    # given: the totals kept in Redis (on in production; the tests' default sums the table)
    settings.LLM_SPEND_CACHE_SECONDS = 60
    settings.LLM_BUDGET_DAILY_USD = 1.0
    now = timezone.now()
    key = spend_key(now.replace(hour=0, minute=0, second=0, microsecond=0))
    client = redis_client()
    client.delete(key)
    LLMCallFactory(cost_usd=Decimal("0.60"))
    # when: the first check sums the log once and keeps the totals
    assert llm_spend().today_usd == Decimal("0.60")
    assert 0 < client.ttl(key) <= 60
    # then: the next checks read them, not the log (a row nobody logged is not seen)...
    LLMCallFactory(cost_usd=Decimal("5.00"))
    assert llm_spend().month_usd == Decimal("0.60")
    # ...and a call made through the gateway raises them at once
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    cost = LLMCall.objects.get(id=result.llm_call_id).cost_usd
    assert cost > 0
    assert llm_spend().today_usd == Decimal("0.60") + cost
    # and once they expire, the log is summed again
    client.delete(key)
    assert llm_spend().today_usd == Decimal("5.60") + cost
    client.delete(key)
