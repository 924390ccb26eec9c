from django.contrib import admin
from django.http import HttpRequest

from apps.core.models import ServiceHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are evidence (audit, logs): shown, never added, edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "hostname", "last_seen_at")
    readonly_fields = ("name", "hostname", "last_seen_at")
