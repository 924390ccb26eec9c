"""Customers, tickets, messages and the audit trail of every ticket transition."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class Channel(models.TextChoices):
    API = "api", "API"
    EMAIL = "email", "Email"
    WIDGET = "widget", "Chat widget"


class Customer(TimeStampedModel):
    """A person who writes to support. Email and external id are each unique when set."""

    # Stored lower-cased by the services, so the unique constraint is case-insensitive.
    email = models.EmailField(max_length=254, blank=True)
    name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(
        max_length=200, blank=True, help_text="The customer's id in the caller's own system."
    )
    # Set when the customer's personal data was erased (apps/privacy): the row stays, empty,
    # so their tickets and the counts built on them still add up.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=~Q(email=""), name="customer_email_unique"
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="customer_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        if self.erased_at is not None:
            return f"erased customer #{self.pk}"
        return self.name or self.email or self.external_id or f"customer #{self.pk}"


class CustomerIdentity(models.Model):
    """How a customer is known on one channel (an email address, a widget visitor id)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    identifier = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "customer identities"
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "identifier"], name="customer_identity_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.identifier}"


class TicketStatus(models.TextChoices):
    """Where a ticket stands. The copilot moves `new` tickets on; agents resolve/reopen.

    new                the customer spoke last; the copilot pipeline has not decided yet
    awaiting_customer  a reply was sent (auto-sent by the copilot or by an agent)
    needs_review       the copilot drafted a reply that an agent must review
    handed_off         a human owns the conversation; the copilot stays out
    resolved           closed; a new customer message reopens it
    """

    NEW = "new", "New"
    AWAITING_CUSTOMER = "awaiting_customer", "Awaiting customer"
    NEEDS_REVIEW = "needs_review", "Needs review"
    HANDED_OFF = "handed_off", "Handed off"
    RESOLVED = "resolved", "Resolved"


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Ticket(TimeStampedModel):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=255, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(
        max_length=32, choices=TicketStatus.choices, default=TicketStatus.NEW, db_index=True
    )
    priority = models.CharField(
        max_length=16, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    # Triage results, stored by the pipeline later. A name, not a foreign key: triage is a
    # sibling app and tickets must not depend on it.
    intent = models.CharField(max_length=100, blank=True, db_index=True)
    intent_confidence = models.FloatField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True)
    # Which API key created the ticket, for audit; null for widget and email.
    source_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Service levels (apps/tickets/sla.py): when the first reply and the resolution are due,
    # set from the priority's targets when the ticket opens (again when it reopens).
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    # Set when the ticket's text was erased (the customer's request, or the retention period):
    # subject, messages, drafts and model-call text are empty; the counts stay.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["updated_at", "id"], name="ticket_updated_idx"),
            # The daily figures count resolutions per day (apps.operations.rollups).
            models.Index(
                fields=["resolved_at"],
                condition=Q(resolved_at__isnull=False),
                name="ticket_resolved_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TicketStatus.values), name="ticket_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(intent_confidence__isnull=True)
                | Q(intent_confidence__gte=0, intent_confidence__lte=1),
                name="ticket_intent_confidence_range",
            ),
            models.CheckConstraint(
                condition=~Q(status=TicketStatus.RESOLVED) | Q(resolved_at__isnull=False),
                name="ticket_resolved_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject or '(no subject)'}"


class AuthorKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    COPILOT = "copilot", "Copilot"
    SYSTEM = "system", "System"
    # An agent's note on the ticket: for the team only, never shown or sent to the customer,
    # never read by the copilot's prompt.
    NOTE = "note", "Internal note"


class BodyFormat(models.TextChoices):
    TEXT = "text", "Plain text"
    MARKDOWN = "markdown", "Markdown"


class PipelineStatus(models.TextChoices):
    """Where a message is in the copilot pipeline.

    not_applicable   not a customer message: the pipeline never runs for it
    unscheduled      stored; the pipeline task is not (yet) on the broker (broker down?)
    queued           the pipeline task was published to the broker
    awaiting_triage  the pipeline task picked it up; waits for the triage stage
    processing / done / failed  used by the full pipeline
    """

    NOT_APPLICABLE = "not_applicable", "Not applicable"
    UNSCHEDULED = "unscheduled", "Unscheduled"
    QUEUED = "queued", "Queued"
    AWAITING_TRIAGE = "awaiting_triage", "Awaiting triage"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Message(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author_kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    body = models.TextField()
    body_format = models.CharField(
        max_length=16, choices=BodyFormat.choices, default=BodyFormat.TEXT
    )
    # [{"name", "content_type", "size"}]: recorded, never stored or opened.
    attachments = models.JSONField(default=list, blank=True)
    # The channel's own id (an email Message-ID without <>), for threading and dedup.
    channel_message_id = models.CharField(max_length=998, blank=True)
    # Intake facts worth keeping: email headers used for threading, what was stripped or
    # truncated and why.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    # Triage results, stored by the pipeline later.
    intent = models.CharField(max_length=100, blank=True)
    intent_confidence = models.FloatField(null=True, blank=True)
    intent_alternatives = models.JSONField(default=list, blank=True)
    classifier_version_id = models.BigIntegerField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True)

    pipeline_status = models.CharField(
        max_length=32, choices=PipelineStatus.choices, default=PipelineStatus.NOT_APPLICABLE
    )
    pipeline_attempts = models.PositiveIntegerField(
        default=0, help_text="How many times the pipeline task was published for this message."
    )
    pipeline_scheduled_at = models.DateTimeField(null=True, blank=True)
    pipeline_started_at = models.DateTimeField(null=True, blank=True)
    pipeline_finished_at = models.DateTimeField(null=True, blank=True)
    pipeline_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The sweep looks only at messages that may be stuck.
            models.Index(
                fields=["pipeline_status", "created_at"],
                condition=Q(
                    pipeline_status__in=["unscheduled", "queued", "awaiting_triage", "processing"]
                ),
                name="message_pipeline_open_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_message_id"],
                condition=~Q(channel_message_id=""),
                name="message_channel_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(author_kind__in=AuthorKind.values), name="message_author_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(pipeline_status__in=PipelineStatus.values),
                name="message_pipeline_status_valid",
            ),
            # Only customer messages go through the pipeline.
            models.CheckConstraint(
                condition=Q(author_kind="customer")
                | Q(pipeline_status=PipelineStatus.NOT_APPLICABLE),
                name="message_pipeline_only_customer",
            ),
            models.CheckConstraint(
                condition=Q(intent_confidence__isnull=True)
                | Q(intent_confidence__gte=0, intent_confidence__lte=1),
                name="message_intent_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"message #{self.pk} on ticket #{self.ticket_id} by {self.author_kind}"


class OutboundEmailStatus(models.TextChoices):
    PENDING = "pending", "Pending (being sent, or waiting for its next try)"
    SENT = "sent", "Taken by the mail server"
    FAILED = "failed", "Failed (every try refused): the ticket went to a person"


class OutboundEmail(TimeStampedModel):
    """An emailed reply waiting to be taken by the mail server: the outbox.

    Written in the transaction that stores the reply (an agent's, or the copilot's auto-sent
    one with its decision), so a reply is never sent without being recorded nor recorded
    without being sent: delivered once that transaction commits, by whoever committed it,
    and again by the sweep (apps/tickets/email_outbound.py) until the mail server takes it.
    `next_attempt_at` is also the claim: a sender moves it forward before sending, so two
    senders never send the same row at once.
    """

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="outbound_email")
    status = models.CharField(
        max_length=16, choices=OutboundEmailStatus.choices, default=OutboundEmailStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="outbound_email_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"email for message #{self.message_id}: {self.status}"


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    STATUS_CHANGED = "status_changed", "Status changed"
    ASSIGNED = "assigned", "Assigned"


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    COPILOT = "copilot", "Copilot"
    SYSTEM = "system", "System"
    API_KEY = "api_key", "API key"


class TicketEvent(models.Model):
    """One entry of a ticket's audit trail: what changed, who or what did it, why. Never edited."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    from_status = models.CharField(max_length=32, choices=TicketStatus.choices, blank=True)
    to_status = models.CharField(max_length=32, choices=TicketStatus.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.kind}: {self.from_status or '-'} → {self.to_status}"


class Macro(models.Model):
    """A canned reply agents insert into a reply with a few keys ("/refund" then Tab, or the
    picker: `m`). Placeholders in double braces are filled for the ticket at hand (see
    apps/tickets/macros.py for the names)."""

    shortcut = models.SlugField(
        max_length=40, unique=True, help_text="Typed after a slash in the reply box: /shortcut"
    )
    name = models.CharField(max_length=120)
    body = models.TextField(
        help_text="The reply. Placeholders: {{customer.name}}, {{customer.first_name}}, "
        "{{customer.email}}, {{agent.name}}, {{ticket.id}}, {{ticket.subject}}."
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]

    def __str__(self) -> str:
        return f"/{self.shortcut}: {self.name}"


class SlaTarget(models.Model):
    """How soon a ticket of this priority gets its first reply and its resolution (calendar
    time). A priority without a row uses the settings' target (TICKET_SLA)."""

    priority = models.CharField(max_length=16, choices=TicketPriority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        verbose_name = "SLA target"
        constraints = [
            models.CheckConstraint(
                condition=Q(first_response_minutes__gt=0) & Q(resolution_minutes__gt=0),
                name="sla_target_positive",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_priority_display()}: first reply {self.first_response_minutes} min, "
            f"resolution {self.resolution_minutes} min"
        )
