from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.access import request_user
from apps.core.exceptions import DeskpilotError
from apps.tickets.macros import placeholders_unknown
from apps.tickets.models import (
    Customer,
    CustomerIdentity,
    Macro,
    Message,
    OutboundEmail,
    SlaTarget,
    Ticket,
    TicketEvent,
)
from apps.tickets.services import Actor, ticket_assign, ticket_reopen, ticket_resolve


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ("created_at", "author_kind", "channel", "body", "pipeline_status", "intent")
    readonly_fields = fields
    show_change_link = True


class TicketEventInline(ReadOnlyInline):
    model = TicketEvent
    fields = ("at", "kind", "from_status", "to_status", "actor_kind", "actor_id", "reason")
    readonly_fields = fields


class CustomerIdentityInline(admin.TabularInline):
    model = CustomerIdentity
    extra = 0
    fields = ("channel", "identifier", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "email", "external_id", "created_at")
    search_fields = ("name", "email", "external_id", "identities__identifier")
    readonly_fields = ("created_at", "updated_at", "erased_at")
    inlines = [CustomerIdentityInline]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subject",
        "customer",
        "channel",
        "status",
        "priority",
        "assignee",
        "intent",
        "updated_at",
    )
    list_filter = ("status", "channel", "priority", "intent", "language")
    search_fields = ("subject", "customer__email", "customer__name", "customer__external_id")
    list_select_related = ("customer", "assignee")
    raw_id_fields = ("customer",)
    # Status moves only through the services (audited); the admin shows it, never edits it.
    readonly_fields = (
        "status",
        "assignee",
        "channel",
        "intent",
        "intent_confidence",
        "language",
        "source_api_key",
        "status_changed_at",
        "last_customer_message_at",
        "resolved_at",
        "created_at",
        "updated_at",
    )
    inlines = [MessageInline, TicketEventInline]
    actions = ["resolve", "reopen", "assign_to_me"]

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Ticket],
        change: Callable[[Ticket, Actor], object],
    ) -> None:
        done = 0
        for ticket in queryset:
            try:
                change(ticket, Actor.for_user(request_user(request)))
                done += 1
            except DeskpilotError as error:
                self.message_user(request, error.message, level=messages.WARNING)
        self.message_user(request, f"{done} ticket(s) changed.")

    @admin.action(description="Resolve selected tickets")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._apply(
            request, queryset, lambda t, a: ticket_resolve(ticket=t, actor=a, reason="admin")
        )

    @admin.action(description="Reopen selected tickets")
    def reopen(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._apply(
            request, queryset, lambda t, a: ticket_reopen(ticket=t, actor=a, reason="admin")
        )

    @admin.action(description="Assign selected tickets to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        me = request_user(request)
        self._apply(request, queryset, lambda t, a: ticket_assign(ticket=t, assignee=me, actor=a))


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "ticket", "author_kind", "channel", "pipeline_status", "created_at")
    list_filter = ("author_kind", "channel", "pipeline_status")
    search_fields = ("body", "channel_message_id", "ticket__subject")
    list_select_related = ("ticket",)

    # A message is history: shown, never edited.
    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    """The outbox: emailed replies, whether the mail server took them, and why not."""

    list_display = ("id", "message", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status",)
    search_fields = ("error", "message__ticket__subject")
    list_select_related = ("message",)
    readonly_fields = ("message", "status", "attempts", "next_attempt_at", "sent_at", "error")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TicketEvent)
class TicketEventAdmin(admin.ModelAdmin):
    list_display = ("id", "ticket", "kind", "from_status", "to_status", "actor_kind", "at")
    list_filter = ("kind", "to_status", "actor_kind")
    search_fields = ("ticket__subject", "reason")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MacroForm(forms.ModelForm):
    class Meta:
        model = Macro
        fields = ("shortcut", "name", "body", "is_active")

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        unknown = placeholders_unknown(body)
        if unknown:
            raise forms.ValidationError(
                f"Unknown placeholder(s): {', '.join(unknown)}. See the list below the field."
            )
        return body


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    """Canned replies: agents insert them in the inbox (/shortcut then Tab, or `m`)."""

    form = MacroForm
    list_display = ("shortcut", "name", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("shortcut", "name", "body")


@admin.register(SlaTarget)
class SlaTargetAdmin(admin.ModelAdmin):
    """First-reply and resolution targets per priority (calendar minutes); a priority
    without a row uses TICKET_SLA."""

    list_display = ("priority", "first_response_minutes", "resolution_minutes")
