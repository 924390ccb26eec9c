"""Tickets API: strict input serializers and the output shapes (also the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from rest_framework import serializers

from apps.core.exceptions import DeskpilotError
from apps.core.rest import (
    StrictCharField,
    StrictChoiceField,
    StrictEmailField,
    StrictSerializer,
)
from apps.tickets.models import (
    AuthorKind,
    Channel,
    Customer,
    Message,
    PipelineStatus,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from apps.tickets.services import message_body_clean


class BodyField(StrictCharField):
    """A message body: kept as written (no trimming), within MESSAGE_MAX_CHARS."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault(
            "help_text",
            f"The message text, at most {settings.MESSAGE_MAX_CHARS} characters "
            "(MESSAGE_MAX_CHARS).",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        body = super().to_internal_value(data)
        try:
            return message_body_clean(body, field=self.field_name or "body")
        except DeskpilotError as error:
            raise serializers.ValidationError(error.message) from None


class CustomerInputSerializer(StrictSerializer):
    """Who wrote: found by external_id, else email, else a new customer."""

    email = StrictEmailField(required=False, allow_blank=True, max_length=254)
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    external_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="The customer's id in your system; finds the same customer next time.",
    )


class TicketCreateSerializer(StrictSerializer):
    """A new ticket with the customer's first message."""

    customer = CustomerInputSerializer(required=False)
    subject = StrictCharField(required=False, allow_blank=True, max_length=255)
    body = BodyField()
    channel = StrictChoiceField(choices=Channel.choices, required=False, default=Channel.API)
    priority = StrictChoiceField(
        choices=TicketPriority.choices, required=False, default=TicketPriority.NORMAL
    )


class PostableAuthorKind(models.TextChoices):
    """Who may write a message through the API: the customer or an agent."""

    CUSTOMER = AuthorKind.CUSTOMER.value, "Customer"
    AGENT = AuthorKind.AGENT.value, "Agent"
    NOTE = AuthorKind.NOTE.value, "Internal note (never shown or sent to the customer)"


class MessageCreateSerializer(StrictSerializer):
    """A message added to an existing ticket."""

    body = BodyField()
    author_kind = StrictChoiceField(
        choices=PostableAuthorKind.choices,
        required=False,
        default=AuthorKind.CUSTOMER,
        help_text="Who wrote it: the customer (default) or an agent; `note` is an internal "
        "note, never shown or sent to the customer.",
    )


class TicketListQuerySerializer(StrictSerializer):
    """Filters and paging of the ticket list."""

    status = StrictChoiceField(choices=TicketStatus.choices, required=False)
    channel = StrictChoiceField(choices=Channel.choices, required=False)
    intent = StrictCharField(required=False, max_length=100)
    updated_since = serializers.DateTimeField(
        required=False, help_text="ISO 8601 date-time; tickets updated at or after it."
    )
    cursor = StrictCharField(required=False, help_text="The `next`/`previous` link's cursor.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)


# --- output --------------------------------------------------------------------------------


class AttachmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class MessageSerializer(serializers.ModelSerializer):
    ticket_id = serializers.IntegerField(read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    pipeline_status = serializers.ChoiceField(choices=PipelineStatus.choices, read_only=True)

    class Meta:
        model = Message
        fields: tuple[str, ...] = (
            "id",
            "ticket_id",
            "author_kind",
            "channel",
            "body",
            "body_format",
            "attachments",
            "created_at",
            "pipeline_status",
            "intent",
            "language",
        )
        read_only_fields: tuple[str, ...] = fields


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ("id", "email", "name", "external_id")
        read_only_fields = fields


class TicketSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer(read_only=True)
    assignee = serializers.SerializerMethodField()
    intent_confidence = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Ticket
        fields: tuple[str, ...] = (
            "id",
            "subject",
            "channel",
            "status",
            "priority",
            "customer",
            "assignee",
            "intent",
            "intent_confidence",
            "language",
            "created_at",
            "updated_at",
            "resolved_at",
        )
        read_only_fields: tuple[str, ...] = fields

    def get_assignee(self, ticket: Ticket) -> str | None:
        return ticket.assignee.username if ticket.assignee_id else None  # type: ignore[union-attr]


class TicketDetailSerializer(TicketSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(TicketSerializer.Meta):
        fields = (*TicketSerializer.Meta.fields, "messages")
        read_only_fields = fields


class TicketCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    customer_id = serializers.IntegerField()
    message_id = serializers.IntegerField(help_text="The id of the ticket's first message.")
    created_at = serializers.DateTimeField()


class MessageCreatedSerializer(MessageSerializer):
    ticket_status = serializers.ChoiceField(choices=TicketStatus.choices, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = (*MessageSerializer.Meta.fields, "ticket_status")
        read_only_fields = fields


class InboundEmailResultSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    is_duplicate = serializers.BooleanField(
        help_text="True when this Message-ID was already stored: nothing new was created."
    )
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="What intake did to the email, and why."
    )
