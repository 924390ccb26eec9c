"""Writes for customers, tickets and messages: the only way other apps change them."""

from apps.tickets.services.customers import customer_details_update, customer_resolve
from apps.tickets.services.pipeline import (
    PIPELINE_LEASE,
    PIPELINE_QUEUE,
    PIPELINE_TASK,
    message_pipeline_advance,
    message_pipeline_schedule,
    message_pipeline_sweep,
)
from apps.tickets.services.tickets import (
    ALLOWED_TRANSITIONS,
    Actor,
    message_add,
    message_body_clean,
    message_triage_record,
    ticket_assign,
    ticket_create,
    ticket_handoff,
    ticket_reopen,
    ticket_resolve,
    ticket_review_request,
    ticket_triage_record,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "PIPELINE_LEASE",
    "PIPELINE_QUEUE",
    "PIPELINE_TASK",
    "Actor",
    "customer_details_update",
    "customer_resolve",
    "message_add",
    "message_body_clean",
    "message_pipeline_advance",
    "message_pipeline_schedule",
    "message_pipeline_sweep",
    "message_triage_record",
    "ticket_assign",
    "ticket_create",
    "ticket_handoff",
    "ticket_reopen",
    "ticket_resolve",
    "ticket_review_request",
    "ticket_triage_record",
]
