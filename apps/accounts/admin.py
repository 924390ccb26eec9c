from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from apps.accounts.models import ApiKey, ApiKeyScope, User
from apps.accounts.services import api_key_create, api_key_revoke


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Deskpilot", {"fields": ("role",)}))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    fields = ("name", "scopes", *readonly_fields)
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return obj is None  # a key is created or revoked, never edited

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        scopes = obj.scopes or [ApiKeyScope.READ]
        created, key = api_key_create(name=obj.name, scopes=scopes, created_by=request.user)
        obj.pk = created.pk
        obj.__dict__.update(created.__dict__)
        messages.warning(request, f"New API key (shown once, copy it now): {key}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
