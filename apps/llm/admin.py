from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.llm.models import LLMCall


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnlyAdmin):
    """Read-only: the call log is evidence (cost, latency, errors, and for the audit the
    messages as sent and the answer as received), never edited or deleted by hand."""

    list_display = (
        "created_at",
        "purpose",
        "alias",
        "served_alias",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "time_to_first_token_ms",
        "ticket_id",
    )
    list_filter = ("status", "purpose", "alias", "served_alias", "model", "cache_hit", "created_at")
    search_fields = ("model", "error_type", "error_message", "prompt_version")
    list_display_links = ("created_at",)
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in LLMCall._meta.fields]
