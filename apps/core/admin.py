from django.contrib import admin

from apps.core.models import ServiceHeartbeat


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "hostname", "last_seen_at")
    readonly_fields = ("name", "hostname", "last_seen_at")
