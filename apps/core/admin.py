from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.core.exceptions import DeskpilotError
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


def activate_selected(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    activate: Callable[[Any], str],
) -> None:
    """The body of a one-row admin action ("make this version active", "promote this
    experiment's winner"): exactly one row selected,
    `activate(row)` returns the success message; its refusal (the regression gate's, with
    the metrics) is shown as the error."""
    if queryset.count() != 1:
        model_admin.message_user(request, "Select exactly one.", messages.ERROR)
        return
    try:
        done = activate(queryset.get())
    except DeskpilotError as error:
        model_admin.message_user(request, error.message, messages.ERROR)
        return
    model_admin.message_user(request, done, messages.SUCCESS)


def progress_bar(*, done: int, total: int | None, running: bool) -> SafeString:
    """A list column's progress: a bar, and its figures. A page showing a running one
    reloads itself every few seconds (ProgressMedia) until nothing runs."""
    if total:
        return format_html(
            '<progress max="{}" value="{}"{}></progress> {}/{}',
            total, done, " data-running" if running else "", done, total,
        )  # fmt: skip
    if running:
        return format_html("<progress data-running></progress> {}", done or "")
    return format_html("{}", done if done else "—")


class ProgressMedia:
    """Admin Media: reload a changelist while any row's progress runs."""

    js = ("core/admin_progress.js",)
