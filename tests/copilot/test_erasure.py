"""A customer's erasure leaves nothing of theirs in the database or Redis; counts stay.

The customer goes through everything that copies their words: the API (with an
Idempotency-Key), the pipeline against a model that repeats what it reads (model-call log,
reply cache, draft stream), an agent's edited reply, CSAT, an intent correction (training
example), the admin's change log and the email rate limit. Then the whole database, every
table and column as text, and every Redis key and value are searched for them.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import IdempotencyRecord
from apps.copilot.models import Draft, ReplyCacheEntry
from apps.copilot.services import pipeline_run
from apps.feedback.drafts import draft_send_recorded
from apps.feedback.services import csat_record, ticket_intent_correct
from apps.llm.models import LLMCall
from apps.privacy.models import ErasureKind, ErasureRecord
from apps.privacy.services import retention_purge
from apps.safety.throttle import limit_hit
from apps.tickets.models import Channel, Customer, Message, PipelineStatus, Ticket, TicketStatus
from apps.tickets.services.erasure import ERASED
from apps.triage.models import TrainingExample
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

pytestmark = pytest.mark.slow

EMAIL = "zephyrine.quokka@example.org"
NAME = "Zephyrine Quokkabottom"
EXTERNAL_ID = "crm-zq-88421"
PHRASE = "marmalade-tangerine"  # their own words, not personal data by any detector
NEEDLES = [EMAIL, "zephyrine", "quokkabottom", EXTERNAL_ID, PHRASE]
OTHER = "the other customer's pelican-umbrella question"
CACHEABLE = f"How do I reset my password for the {PHRASE} account?"


def _database_mentions(needles: list[str]) -> dict[str, int]:
    """Rows of any table whose text (every column) contains a needle, by table."""
    patterns = [f"%{needle.lower()}%" for needle in needles]
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(
                # Table names come from the database itself, not from input.
                f'SELECT count(*) FROM "{table}" AS t WHERE lower(t::text) LIKE ANY(%s)',  # noqa: S608
                [patterns],
            )
            (count,) = cursor.fetchone()
            if count:
                found[table] = count
    return found


def _redis_mentions(needles: list[str]) -> list[str]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    hits = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "hash":
            values = list(client.hgetall(key).values())
        else:
            values = []
        text = (key + b"".join(values)).decode("utf-8", "replace").lower()
        hits += [key.decode("utf-8", "replace") for needle in needles if needle in text]
    return hits


def _life_of(api_key_client, fake_openai, agent) -> Ticket:  # type: ignore[no-untyped-def]
    """The customer writes through the API, is answered, rated, corrected, edited in the
    admin's log; returns their first ticket."""
    client = api_key_client()
    posted = client.post(
        "/api/v1/tickets",
        {
            "customer": {"email": EMAIL, "name": NAME, "external_id": EXTERNAL_ID},
            "body": f"Hello, {NAME} here. My {PHRASE} order never arrived, where is it?",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="erase-me-1",
    )
    assert posted.status_code == 201, posted.content
    ticket = Ticket.objects.get(pk=posted.json()["id"])
    first = ticket.messages.get()
    fake_openai.reset(default=Reply.gullible())
    draft = pipeline_run(message_id=first.pk)
    assert draft is not None
    # An agent edits the draft and sends it with the customer's name in it.
    draft_send_recorded(
        draft=draft, user=agent, body=f"Dear {NAME}, your {PHRASE} order is on its way."
    )
    csat_record(ticket=ticket, score=2, comment=f"{PHRASE} took too long -- Zephyrine")
    ticket_intent_correct(ticket=ticket, intent="track_order", user=agent)
    # In the widget, the reply streams (Redis keeps the text for late readers).
    _, chat = customer_ticket(
        f"Is my {PHRASE} voucher still valid?", channel=Channel.WIDGET, email=EMAIL
    )
    assert pipeline_run(message_id=chat.pk) is not None
    # A second question, without personal data: its reply is cached.
    answer = "You can set a new password yourself from the sign-in page."
    fake_openai.reset(
        default=Reply.ok(json.dumps({"reply": answer, "citations": ["P1"], "answerable": True}))
    )
    second_ticket, second = customer_ticket(CACHEABLE, email=EMAIL)
    assert pipeline_run(message_id=second.pk) is not None
    assert ReplyCacheEntry.objects.filter(source_ticket_id=second_ticket.pk).exists()
    # A follow-up from the customer on the first ticket (the API keeps its answer, which
    # quotes the message, for Idempotency-Key retries).
    followed = client.post(
        f"/api/v1/tickets/{ticket.pk}/messages",
        {"author_kind": "customer", "body": f"Thanks. Also, my {PHRASE} invoice is wrong."},
        format="json",
        HTTP_IDEMPOTENCY_KEY="erase-me-2",
    )
    assert followed.status_code == 201, followed.content
    # Emails from their address were counted by the rate limit (its Redis key names them).
    limit_hit("email_sender", EMAIL)
    return ticket


@pytest.fixture
def agent(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_superuser("lead", "lead@example.com", "pw-erasure-1")


def test_erasing_a_customer_leaves_nothing_of_theirs_and_the_counts_add_up(
    copilot_ready, fake_openai, api_key_client, agent, client
):
    # given: a customer whose words went everywhere, and another customer
    ticket = _life_of(api_key_client, fake_openai, agent)
    _, other = customer_ticket(OTHER, email="someone.else@example.com")
    client.force_login(agent)
    changed = client.post(
        f"/admin/tickets/customer/{ticket.customer_id}/change/",
        {
            "name": NAME + " (VIP)",
            "email": EMAIL,
            "external_id": EXTERNAL_ID,
            "identities-TOTAL_FORMS": "0",
            "identities-INITIAL_FORMS": "0",
        },
    )
    assert changed.status_code == 302, changed.content[:2000]
    before = _database_mentions(NEEDLES)
    assert {
        "tickets_customer",
        "tickets_message",
        "copilot_draft",
        "llm_llmcall",
        "copilot_replycacheentry",
        "feedback_draftaction",
        "feedback_csatrating",
        "triage_trainingexample",
        "accounts_idempotencyrecord",
        "django_admin_log",
    } <= set(before), before
    assert _redis_mentions(NEEDLES)
    totals = (
        Ticket.objects.count(),
        Message.objects.count(),
        Draft.objects.count(),
        LLMCall.objects.count(),
        LLMCall.objects.aggregate(cost=Sum("cost_usd"))["cost"],
    )

    # when
    out = io.StringIO()
    call_command("customer_erase", EMAIL, "--reason", "request ref 118", stdout=out)

    # then: nothing of theirs is left, in any table or in Redis
    assert _database_mentions(NEEDLES) == {}
    assert _redis_mentions(NEEDLES) == []
    # and the other customer is untouched
    assert Message.objects.get(pk=other.pk).body == OTHER
    # and every row that metrics count is still there, with its cost
    assert totals == (
        Ticket.objects.count(),
        Message.objects.count(),
        Draft.objects.count(),
        LLMCall.objects.count(),
        LLMCall.objects.aggregate(cost=Sum("cost_usd"))["cost"],
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.erased_at is not None
    assert set(ticket.messages.values_list("body", flat=True)) == {ERASED}
    assert (
        str(Customer.objects.get(pk=ticket.customer_id)) == f"erased customer #{ticket.customer_id}"
    )
    # and the command said what it removed; the record keeps counts, not data
    printed = out.getvalue()
    assert "customer #" in printed and "drafts:" in printed and "llm_calls:" in printed
    record = ErasureRecord.objects.get(kind=ErasureKind.CUSTOMER)
    assert record.reason == "request ref 118"
    assert record.counts["messages"] == 5 and record.counts["training_examples"] == 1
    assert record.counts["reply_cache_entries"] == 2
    assert not TrainingExample.objects.filter(normalized_text__contains=PHRASE).exists()
    assert not IdempotencyRecord.objects.filter(key="erase-me-2").exists()


def test_the_admin_action_asks_first_then_erases(copilot_ready, agent, client):
    # given
    ticket, _ = customer_ticket(f"My {PHRASE} parcel is late", email=EMAIL)
    client.force_login(agent)
    url = "/admin/tickets/customer/"
    selected = {"action": "erase_personal_data", "_selected_action": [ticket.customer_id]}
    # when: the action is chosen
    asked = client.post(url, selected)
    # then: a confirmation page, nothing erased yet
    assert asked.status_code == 200 and b"cannot be undone" in asked.content
    assert Message.objects.get(ticket=ticket).body != ERASED
    # when: confirmed with a reason
    done = client.post(url, {**selected, "confirmed": "yes", "reason": "GDPR art. 17"}, follow=True)
    # then
    assert done.status_code == 200 and b"Erased customer #" in done.content
    assert Message.objects.get(ticket=ticket).body == ERASED
    record = ErasureRecord.objects.get()
    assert (record.requested_by, record.reason) == (agent, "GDPR art. 17")
    assert _database_mentions([EMAIL, PHRASE]) == {}


def test_a_bad_reference_is_a_clear_error_and_erases_nothing(copilot_ready):
    customer_ticket(f"My {PHRASE} parcel is late", email=EMAIL)
    with pytest.raises(Exception, match=r"no customer matches 'nobody@example\.org'"):
        call_command("customer_erase", "nobody@example.org")
    assert Message.objects.filter(body__contains=PHRASE).count() == 1
    assert not ErasureRecord.objects.exists()


def test_retention_purges_what_is_due_and_reports_it(copilot_ready, fake_openai, settings):
    # given: an old resolved conversation, a recent one, and every period set
    fake_openai.reset(default=Reply.gullible())
    old, old_message = customer_ticket(f"Old: my {PHRASE} order", email=EMAIL)
    pipeline_run(message_id=old_message.pk)
    recent, recent_message = customer_ticket(f"New: my {PHRASE} order", email="new@example.com")
    pipeline_run(message_id=recent_message.pk)
    long_ago = old.created_at.replace(year=old.created_at.year - 1)
    Ticket.objects.filter(pk=old.pk).update(
        status=TicketStatus.RESOLVED, resolved_at=long_ago, updated_at=long_ago
    )
    LLMCall.objects.filter(ticket_id=old.pk).update(created_at=long_ago)
    settings.RETENTION_DAYS = {
        "messages": 90, "llm_text": 30, "audit": 0, "caches": 30, "widget_visitors": 30,
        "webhooks": 30,
    }  # fmt: skip
    # when
    record = retention_purge()
    # then: the old conversation's text went, the recent one's stayed
    assert record is not None and record.kind == ErasureKind.RETENTION
    assert record.counts["tickets"] == 1 and record.counts["llm_calls"] >= 1
    assert Message.objects.get(pk=old_message.pk).body == ERASED
    assert Message.objects.get(pk=recent_message.pk).body.startswith("New:")
    old_calls = LLMCall.objects.filter(ticket_id=old.pk)
    assert old_calls.exists() and all(c.response_text == "" for c in old_calls)
    assert LLMCall.objects.filter(ticket_id=recent.pk).exclude(response_text="").exists()
    assert old_calls.aggregate(cost=Sum("cost_usd"))["cost"] >= Decimal(0)
    # and a second run finds nothing more to do
    assert retention_purge() is None


def test_a_draft_finished_after_its_customer_was_erased_is_not_kept(copilot_ready, fake_openai):
    # given: the message's ticket is erased while the model writes (here: before it answers)
    fake_openai.reset(default=Reply.gullible())
    ticket, message = customer_ticket(f"Where is my {PHRASE} order?", email=EMAIL)
    Ticket.objects.filter(pk=ticket.pk).update(erased_at=timezone.now())
    # when
    draft = pipeline_run(message_id=message.pk)
    # then: no draft, and the model call kept no text; the message is done
    assert draft is None and not Draft.objects.filter(ticket=ticket).exists()
    calls = LLMCall.objects.filter(ticket_id=ticket.pk)
    assert fake_openai.hits == 1 and calls.count() == 1
    assert calls.get().response_text == "" and calls.get().request_messages == []
    assert Message.objects.get(pk=message.pk).pipeline_status == PipelineStatus.DONE
