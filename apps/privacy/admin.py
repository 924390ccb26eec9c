"""The admin's erasure action on customers and the (read-only) list of erasures."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from apps.accounts.models import User
from apps.core.admin import ReadOnlyAdmin
from apps.privacy.models import ErasureRecord
from apps.privacy.services import customer_erase
from apps.tickets.admin import CustomerAdmin
from apps.tickets.models import Customer


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "subject", "requested_by", "reason")
    list_filter = ("kind",)
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ErasureRecord._meta.fields]


admin.site.unregister(Customer)


@admin.register(Customer)
class ErasableCustomerAdmin(CustomerAdmin):
    actions = ["erase_personal_data"]

    @admin.action(description="Erase the selected customers' personal data", permissions=["delete"])
    def erase_personal_data(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        """First a page that says what will go and asks for a reason; then the erasure."""
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/privacy/customer_erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Erase personal data",
                    "customers": queryset,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )
        reason = request.POST.get("reason", "").strip() or "erasure requested in the admin"
        user = request.user if isinstance(request.user, User) else None
        record = customer_erase(customers=list(queryset), requested_by=user, reason=reason)
        changed = ", ".join(f"{key} {value}" for key, value in record.counts.items() if value)
        self.message_user(request, f"Erased {record.subject}: {changed or 'nothing was left'}.")
        return None
