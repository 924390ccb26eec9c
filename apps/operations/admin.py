from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.operations.models import Alert


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Alerts and their state: firing now first. Sent once per incident (see
    apps.operations.alerts); `suppressed` counts re-firings within the cooldown."""

    list_display = (
        "state", "severity", "kind", "message", "fired_at", "resolved_at", "last_sent_at",
        "sends", "suppressed", "last_error",
    )  # fmt: skip
    list_filter = ("state", "severity", "kind")
    search_fields = ("key", "message")
    readonly_fields = [field.name for field in Alert._meta.fields]

    def get_ordering(self, request):  # type: ignore[no-untyped-def]
        return ("state", "-fired_at")  # "firing" sorts before "resolved"
