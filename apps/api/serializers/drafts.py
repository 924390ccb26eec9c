"""Copilot drafts as the API shows them (inside a ticket, and after a regenerate)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api.serializers.tickets import TicketDetailSerializer
from apps.copilot.models import Decision, Draft, DraftStatus, HandoffReason
from apps.copilot.selectors import draft_current_for_ticket


class CitationSerializer(serializers.Serializer):
    passage_id = serializers.CharField()
    external_id = serializers.CharField(help_text="The cited article's external id.")
    title = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    heading_path = serializers.CharField(allow_blank=True)
    passage = serializers.CharField(help_text="The passage the reply relies on.")
    score = serializers.FloatField()
    similarity = serializers.FloatField(allow_null=True)


class DraftSerializer(serializers.ModelSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    reason = serializers.ChoiceField(
        choices=[("", "none (auto-sent)"), *HandoffReason.choices],
        help_text="Why the draft was not auto-sent; empty when it was.",
    )
    status = serializers.ChoiceField(choices=DraftStatus.choices)
    prompt_version = serializers.SerializerMethodField()
    experiment = serializers.SerializerMethodField(
        help_text="The A/B experiment and arm that wrote the draft, or null."
    )
    citations = serializers.SerializerMethodField()
    conversation = serializers.JSONField(
        source="context",
        read_only=True,
        help_text="The conversation the draft read: `turns` (earlier turns in the prompt), "
        "`dropped_turns`, `open_questions` (earlier unanswered customer messages it answers "
        "too), `reading` (`message` or `in_context`: which reading of the message triage "
        "kept) with both readings' intents, and `query` (what was searched, for a follow-up).",
    )
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=8, coerce_to_string=False)

    class Meta:
        model = Draft
        fields = (
            "id",
            "message_id",
            "generation",
            "is_current",
            "status",
            "body",
            "confidence",
            "calibration_version",
            "decision",
            "reason",
            "reason_detail",
            "intent",
            "intent_probability",
            "language",
            "routed_alias",
            "routing_reason",
            "model",
            "prompt_version",
            "experiment",
            "answerable",
            "citations",
            "validation",
            "stage_timings",
            "trace_id",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "cache_hit",
            "streamed",
            "shown_while_drafting",
            "conversation",
            "created_at",
        )
        read_only_fields = fields

    def get_prompt_version(self, draft: Draft) -> int | None:
        return draft.prompt.version if draft.prompt is not None else None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_experiment(self, draft: Draft) -> dict[str, Any] | None:
        arm = draft.experiment_arm
        if arm is None:
            return None
        return {"id": arm.experiment_id, "name": arm.experiment.name, "arm": arm.name}

    @extend_schema_field(CitationSerializer(many=True))
    def get_citations(self, draft: Draft) -> list[dict[str, Any]]:
        keys = CitationSerializer().fields.keys()
        return [{key: citation.get(key) for key in keys} for citation in draft.citations]


class RegenerateQueuedSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    message_id = serializers.IntegerField(help_text="The customer message the draft answers.")
    status = serializers.ChoiceField(choices=[("queued", "queued")])
    stream = serializers.CharField(help_text="Where the new draft streams as it is written.")


class TicketWithDraftSerializer(TicketDetailSerializer):
    draft = serializers.SerializerMethodField(help_text="The copilot's latest draft, if any.")

    class Meta(TicketDetailSerializer.Meta):
        fields = (*TicketDetailSerializer.Meta.fields, "draft")
        read_only_fields = fields

    @extend_schema_field(DraftSerializer(allow_null=True))
    def get_draft(self, ticket: Any) -> dict[str, Any] | None:
        draft = draft_current_for_ticket(ticket_id=ticket.pk)
        return DraftSerializer(draft).data if draft is not None else None


class DraftSendSerializer(serializers.Serializer):
    body = serializers.CharField(
        required=False,
        trim_whitespace=False,
        max_length=20_000,
        help_text="The reply as the agent edited it; leave it out to send the draft as it is.",
    )
    agent = serializers.CharField(
        required=False,
        max_length=200,
        default="",
        help_text="Who sent it in your tool (a name or id), kept with the feedback.",
    )


class DraftRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why the draft is not sent.")
    agent = serializers.CharField(required=False, max_length=200, default="")


class DraftActedSerializer(serializers.Serializer):
    draft_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DraftStatus.choices)
    action = serializers.ChoiceField(
        choices=["accepted", "edited", "rejected"],
        help_text="accepted: sent as drafted; edited: sent as the agent changed it.",
    )
    sent_message_id = serializers.IntegerField(allow_null=True)
    edit_ratio = serializers.FloatField(help_text="Share of the draft the agent changed.")
