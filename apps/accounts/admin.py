from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from apps.accounts.models import ApiKey, ApiKeyScope, IdempotencyRecord, User, WidgetKey
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    widget_key_identity_secret_rotate,
    widget_origins_clean,
)
from apps.core.exceptions import ValidationError


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Deskpilot", {"fields": ("role",)}))


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


class WidgetKeyForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One origin a line, e.g. https://www.example.com (scheme, host, port; no path).",
    )

    class Meta:
        model = WidgetKey
        fields = ("site_name", "allowed_origins", "is_active", "identity_required")

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins)

    def clean_allowed_origins(self) -> list[str]:
        lines = [line for line in self.cleaned_data["allowed_origins"].splitlines() if line.strip()]
        try:
            return widget_origins_clean(lines)
        except ValidationError as error:
            raise forms.ValidationError(error.message) from None


@admin.register(WidgetKey)
class WidgetKeyAdmin(admin.ModelAdmin):
    form = WidgetKeyForm
    list_display = (
        "site_name",
        "public_key",
        "allowed_origins",
        "is_active",
        "identity_required",
        "created_at",
    )
    list_filter = ("is_active", "identity_required")
    search_fields = ("site_name", "public_key")
    # The admin is for admins only (agents are not staff): they may read the secret to give it
    # to the site's developers; it changes only by rotation, never by typing.
    readonly_fields = ("public_key", "identity_secret", "created_at")
    actions = ["identity_secret_rotate"]

    @admin.action(description="Rotate the identity secret of the selected keys")
    def identity_secret_rotate(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for widget_key in queryset:
            widget_key_identity_secret_rotate(widget_key=widget_key)
        self.message_user(
            request,
            f"New identity secret for {queryset.count()} key(s): signatures made with the old "
            "one no longer match. Give the new secret (on each key's page) to the site's server.",
            messages.WARNING,
        )


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "api_key", "response_status", "created_at")
    search_fields = ("key",)
    list_filter = ("response_status",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
