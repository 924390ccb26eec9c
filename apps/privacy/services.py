"""Erasing personal data: one customer's on request, everyone's after the retention periods.

This is the one place that knows every table and store a customer's words are copied into,
and calls each app's own eraser for its part:

  tickets    subjects, message bodies, attachment names, email headers, visitor claims,
             the audit trail's free text; the customer's name, email, external id, identities
  copilot    draft replies and the text inside their validation/guard/context records, the
             reply cache (by source ticket and by question), the live draft streams in Redis
  llm        the prompt and answer text of every model call for those tickets or customers
  feedback   agents' draft/sent text, CSAT comments, flag details
  evaluation gold-set candidates and gold items made of their messages, and run results
  triage     training examples made of the customer's messages
  accounts   stored API answers kept for Idempotency-Key retries that quote them
  admin      the admin's change log entries naming them
  safety     the rate-limit counters keyed by their email address

Rows stay and only their text goes (tickets, messages, drafts, model calls keep their
counts, tokens, costs, decisions), so metrics built on them still add up. Each run leaves an
ErasureRecord with the counts and no personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import idempotency_records_erase
from apps.copilot.models import Draft
from apps.copilot.services.erasure import (
    draft_streams_forget,
    drafts_text_erase,
    reply_cache_forget,
    reply_cache_purge,
)
from apps.evaluation.erasure import evaluation_text_erase
from apps.feedback.selectors import correction_example_ids
from apps.feedback.services import feedback_text_erase
from apps.llm.services import llm_calls_purge, llm_calls_text_erase, llm_calls_text_purge
from apps.privacy.models import ErasureKind, ErasureRecord
from apps.safety.throttle import limit_forget
from apps.tickets.models import Customer, Message, Ticket
from apps.tickets.services.erasure import (
    ERASED,
    Footprint,
    customer_footprint,
    customers_anonymise,
    ticket_events_purge,
    tickets_expired,
    tickets_text_erase,
    widget_visitor_data_purge,
)
from apps.triage.services import training_examples_erase
from apps.webhooks.services import webhook_deliveries_erase, webhook_deliveries_purge

logger = logging.getLogger(__name__)

# Identifiers shorter than this are not searched for in free JSON (a two-letter name would
# match unrelated records).
MIN_NEEDLE = 4
RETENTION_BATCH = 500


@dataclass(frozen=True)
class RetentionPeriods:
    """Days each kind of data is kept; 0 keeps it for ever."""

    messages: int
    llm_text: int
    audit: int
    caches: int
    widget_visitors: int
    webhooks: int

    @classmethod
    def from_settings(cls) -> RetentionPeriods:
        return cls(**settings.RETENTION_DAYS)


def customer_erase(
    *, customers: Collection[Customer], requested_by: User | None = None, reason: str = ""
) -> ErasureRecord:
    """Erase these customers' personal data everywhere it lives (see the module docstring);
    their open tickets are resolved. Returns the record of what went."""
    footprint = customer_footprint(customers=customers)
    with transaction.atomic():
        example_ids = correction_example_ids(ticket_ids=footprint.ticket_ids)
        counts = _tickets_erase(footprint, resolve=True)
        counts["training_examples"] = training_examples_erase(
            texts=footprint.texts, example_ids=example_ids
        )
        counts.update(evaluation_text_erase(ticket_ids=footprint.ticket_ids, texts=footprint.texts))
        counts["llm_calls"] = llm_calls_text_erase(
            ticket_ids=footprint.ticket_ids, customer_ids=footprint.customer_ids
        )
        needles = [value for value in footprint.identifiers if len(value) >= MIN_NEEDLE]
        counts["idempotency_records"] = idempotency_records_erase(
            needles=[*needles, *footprint.texts]
        )
        counts["admin_log_entries"] += _admin_log_scrub(Customer, footprint.customer_ids)
        counts.update(customers_anonymise(customer_ids=footprint.customer_ids))
        record = ErasureRecord.objects.create(
            kind=ErasureKind.CUSTOMER,
            subject=", ".join(f"customer #{pk}" for pk in footprint.customer_ids)[:500],
            requested_by=requested_by,
            reason=reason[:500],
            counts=counts,
        )
    # Outside the database: draft streams and rate-limit counters (Redis).
    record.counts["draft_streams"] = draft_streams_forget(ticket_ids=footprint.ticket_ids)
    record.counts["rate_limit_counters"] = sum(
        limit_forget("email_sender", value.casefold())
        for value in footprint.identifiers
        if "@" in value
    )
    record.save(update_fields=["counts"])
    logger.info("erased customers %s: %s", footprint.customer_ids, record.counts)
    return record


def _tickets_erase(footprint: Footprint, *, resolve: bool) -> dict[str, int]:
    """The text of these tickets and every copy of it the copilot and feedback made."""
    ids = footprint.ticket_ids
    counts = tickets_text_erase(ticket_ids=ids, resolve=resolve)
    counts["drafts"] = drafts_text_erase(ticket_ids=ids)
    counts["webhook_deliveries"] = webhook_deliveries_erase(ticket_ids=ids)
    counts.update(feedback_text_erase(ticket_ids=ids))
    counts["reply_cache_entries"] = reply_cache_forget(ticket_ids=ids, texts=footprint.texts)
    counts["admin_log_entries"] = (
        _admin_log_scrub(Ticket, ids)
        + _admin_log_scrub(Message, footprint.message_ids)
        + _admin_log_scrub(
            Draft, list(Draft.objects.filter(ticket_id__in=ids).values_list("pk", flat=True))
        )
    )
    return counts


def _admin_log_scrub(model: type[models.Model], ids: Collection[int]) -> int:
    """Blank the admin change log's copy of these objects' names and changes."""
    if not ids:
        return 0
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model),
        object_id__in=[str(pk) for pk in ids],
    ).update(object_repr=ERASED, change_message="")


def retention_purge(*, now: datetime | None = None) -> ErasureRecord | None:
    """Apply the retention periods (RETENTION_*_DAYS); returns the record of what went, or
    None when nothing was due."""
    now = now or timezone.now()
    periods = RetentionPeriods.from_settings()
    counts: dict[str, int] = {}

    def add(more: dict[str, int]) -> None:
        for key, value in more.items():
            counts[key] = counts.get(key, 0) + value

    if periods.messages:
        cutoff = now - timedelta(days=periods.messages)
        while ids := tickets_expired(resolved_before=cutoff, limit=RETENTION_BATCH):
            footprint = Footprint(
                ticket_ids=ids,
                message_ids=list(
                    Message.objects.filter(ticket_id__in=ids).values_list("pk", flat=True)
                ),
            )
            with transaction.atomic():
                add(_tickets_erase(footprint, resolve=False))
                add({"llm_calls": llm_calls_text_erase(ticket_ids=ids)})
            add({"draft_streams": draft_streams_forget(ticket_ids=ids)})
    if periods.llm_text:
        add({"llm_call_texts": llm_calls_text_purge(before=now - timedelta(days=periods.llm_text))})
    if periods.audit:
        before = now - timedelta(days=periods.audit)
        add({"llm_call_rows": llm_calls_purge(before=before)})
        add({"ticket_event_rows": ticket_events_purge(before=before)})
    if periods.caches:
        add({"reply_cache_entries": reply_cache_purge(before=now - timedelta(days=periods.caches))})
    if periods.widget_visitors:
        add(widget_visitor_data_purge(before=now - timedelta(days=periods.widget_visitors)))
    if periods.webhooks:
        add(
            {
                "webhook_deliveries": webhook_deliveries_purge(
                    before=now - timedelta(days=periods.webhooks)
                )
            }
        )
    counts = {key: value for key, value in counts.items() if value}
    if not counts:
        return None
    logger.info("retention purge: %s", counts)
    return ErasureRecord.objects.create(
        kind=ErasureKind.RETENTION, subject="retention periods", counts=counts
    )
