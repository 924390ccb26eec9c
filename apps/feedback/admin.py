"""Admin: the "flagged replies" review, and read-only lists of ratings and corrections."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from apps.accounts.access import request_user
from apps.copilot.selectors import policy_effective
from apps.core.admin import ReadOnlyAdmin
from apps.core.exceptions import DeskpilotError
from apps.feedback.drafts import flagged_reply_disable_auto_send
from apps.feedback.models import (
    CsatRating,
    DraftAction,
    FlaggedReply,
    FlagPolicy,
    FlagStatus,
    IntentCorrection,
    ReplyRating,
)
from apps.feedback.review import flagged_review_context
from apps.feedback.services import (
    flagged_reply_add_knowledge_note,
    flagged_reply_add_training_example,
    flagged_reply_review,
)
from apps.knowledge.models import Visibility
from apps.triage.selectors import intent_example_counts


@admin.register(FlagPolicy)
class FlagPolicyAdmin(admin.ModelAdmin):
    """Which flags are raised: each kind can be switched off; the low-margin band and the
    spot checks' share are set here (empty: the settings)."""

    list_display = ("__str__", "low_margin", "low_margin_band", "spot_check_share", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not FlagPolicy.objects.exists()


@admin.register(FlaggedReply)
class FlaggedReplyAdmin(ReadOnlyAdmin):
    """Replies that deserve a look; opening one shows the conversation and the actions."""

    list_display = (
        "id", "reason", "ticket_link", "intent", "draft_confidence", "harm", "status",
        "created_at", "reviewed_by",
    )  # fmt: skip
    list_display_links = ("id", "reason")
    list_filter = ("status", "reason", "intent")
    show_facets = admin.ShowFacets.ALWAYS
    search_fields = ("=ticket__id", "detail", "intent")
    list_select_related = ("reviewed_by", "draft")
    date_hierarchy = "created_at"
    actions = ["mark_reviewed"]
    # Open ones first, the likeliest harm first (services.flag_harm), then the least sure.
    ordering = ("status", "-harm", "draft__confidence", "-id")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(getattr(request.user, "is_deskpilot_admin", False))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_deskpilot_admin", False))

    @admin.display(description="ticket", ordering="ticket_id")
    def ticket_link(self, obj: FlaggedReply) -> str:
        return f"#{obj.ticket_id}"

    @admin.display(description="confidence", ordering="draft__confidence")
    def draft_confidence(self, obj: FlaggedReply) -> str:
        confidence = obj.draft.confidence if obj.draft is not None else None
        return "—" if confidence is None else f"{confidence:.3f}"

    @admin.action(description="Mark selected flagged replies reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[FlaggedReply]) -> None:
        user = request_user(request)
        done = 0
        for flagged in queryset.filter(status=FlagStatus.OPEN):
            try:
                flagged_reply_review(flagged=flagged, user=user)
                done += 1
            except DeskpilotError:
                continue  # reviewed meanwhile by someone else: nothing to do
        self.message_user(request, f"{done} flagged repl{'y' if done == 1 else 'ies'} reviewed.")

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:flagged_id>/act/<str:action>/",
                self.admin_site.admin_view(require_POST(self.act_view)),
                name="feedback_flaggedreply_act",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            return super().change_view(request, object_id, form_url, extra_context)
        flagged = get_object_or_404(FlaggedReply, pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            **flagged_review_context(flagged),
            "opts": self.model._meta,
            "title": f"Flagged reply #{flagged.pk}: {flagged.get_reason_display()}",
            "flagged": flagged,
            "changelist_url": reverse("admin:feedback_flaggedreply_changelist"),
            "intents": sorted(intent_example_counts()),
            "auto_send_disabled": not policy_effective().auto_send_allowed(flagged.intent),
            "visibilities": Visibility.choices,
        }
        return TemplateResponse(request, "admin/feedback/flaggedreply/review.html", context)

    def act_view(self, request: HttpRequest, flagged_id: int, action: str) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse("Only admins review flagged replies.", status=403)
        flagged = get_object_or_404(FlaggedReply, pk=flagged_id)
        url = reverse("admin:feedback_flaggedreply_change", args=[flagged.pk])
        post = request.POST
        user = request_user(request)
        handlers = {
            "review": lambda: flagged_reply_review(
                flagged=flagged, user=user, note=post.get("note", "")
            ),
            "knowledge-note": lambda: flagged_reply_add_knowledge_note(
                flagged=flagged,
                user=user,
                title=post.get("title", ""),
                body=post.get("body", ""),
                visibility=post.get("visibility", Visibility.PUBLIC),
            ),
            "training-example": lambda: flagged_reply_add_training_example(
                flagged=flagged, user=user, intent=post.get("intent", "")
            ),
            "disable-auto-send": lambda: flagged_reply_disable_auto_send(
                flagged=flagged, user=user
            ),
        }
        handler = handlers.get(action)
        if handler is None:
            messages.error(request, f"Unknown action {action!r}.")
            return HttpResponseRedirect(url)
        try:
            handler()
        except DeskpilotError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Done.")
        return HttpResponseRedirect(url)


@admin.register(DraftAction)
class DraftActionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "draft",
        "ticket",
        "agent",
        "edit_distance",
        "edit_ratio",
        "created_at",
    )
    list_filter = ("kind", "intent")
    show_facets = admin.ShowFacets.ALWAYS


@admin.register(ReplyRating)
class ReplyRatingAdmin(ReadOnlyAdmin):
    list_display = ("id", "value", "message", "ticket", "created_at", "updated_at")
    list_filter = ("value",)
    show_facets = admin.ShowFacets.ALWAYS


@admin.register(CsatRating)
class CsatRatingAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "score", "comment", "created_at")
    list_filter = ("score",)
    show_facets = admin.ShowFacets.ALWAYS


@admin.register(IntentCorrection)
class IntentCorrectionAdmin(ReadOnlyAdmin):
    list_display = ("id", "ticket", "from_intent", "to_intent", "corrected_by", "created_at")
    list_filter = ("to_intent",)
