from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin
from apps.core.exceptions import DeskpilotError
from apps.core.outbound import OutboundRefused
from apps.webhooks.models import EventType, WebhookDelivery, WebhookSubscription
from apps.webhooks.services import webhook_delivery_resend, webhook_target_check


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ("name", "url", "event_types", "payload_format", "is_active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_target_check(url)
        except OutboundRefused as error:
            raise forms.ValidationError(str(error)) from error
        return url


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions; the signing secret is shown read-only on the change page."""

    form = SubscriptionForm
    list_display = ("id", "name", "url", "event_types", "payload_format", "is_active", "created_at")
    list_filter = ("is_active", "payload_format")
    readonly_fields = ("secret", "created_by", "created_at")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = f"admin:{request.user.get_username()}"
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: what was sent where, each try's outcome; re-send from here."""

    list_display = (
        "id", "created_at", "subscription", "event_type", "status", "attempts",
        "response_status", "last_error", "delivered_at",
    )  # fmt: skip
    list_filter = ("status", "event_type", "subscription")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    actions = ("resend",)

    @admin.action(description="Re-send the selected deliveries")
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = 0
        for delivery in queryset:
            try:
                webhook_delivery_resend(delivery_id=delivery.pk)
                sent += 1
            except DeskpilotError as error:
                self.message_user(request, f"#{delivery.pk}: {error}", messages.WARNING)
        self.message_user(request, f"{sent} deliveries queued again.", messages.SUCCESS)
