"""The agent inbox, mounted at /inbox/."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from apps.inbox.views import draft, knowledge, me, queue, ticket

app_name = "inbox"


def demo_logins_path() -> str:
    """Where `up --demo` wrote the demo's logins ("" unless the demo runs)."""
    if not settings.DEMO:
        return ""
    return str((settings.DESKPILOT_HOME / "demo_logins.txt").resolve())


urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="inbox/login.html",
            redirect_authenticated_user=True,
            next_page=reverse_lazy("inbox:queue"),
            extra_context={"demo_logins": demo_logins_path},
        ),
        name="login",
    ),
    path(
        "logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("inbox:login")),
        name="logout",
    ),
    path("", queue.queue_page, name="queue"),
    path("me/", me.my_day, name="my-day"),
    path("tickets/<int:ticket_id>/", ticket.ticket_page, name="ticket"),
    path("tickets/<int:ticket_id>/changes", ticket.ticket_changes, name="ticket-changes"),
    path("tickets/<int:ticket_id>/reply", ticket.ticket_reply, name="ticket-reply"),
    path("tickets/<int:ticket_id>/assign", ticket.ticket_assign_view, name="ticket-assign"),
    path("tickets/<int:ticket_id>/assign-me", ticket.ticket_assign_me, name="ticket-assign-me"),
    path("tickets/<int:ticket_id>/take-over", draft.ticket_take_over_view, name="ticket-take-over"),
    path("tickets/<int:ticket_id>/hand-back", draft.ticket_hand_back_view, name="ticket-hand-back"),
    path("tickets/<int:ticket_id>/assist", draft.ticket_assist_view, name="ticket-assist"),
    path("tickets/<int:ticket_id>/draft/send", draft.draft_edit_send, name="draft-send"),
    path("tickets/<int:ticket_id>/draft/reject", draft.draft_reject_view, name="draft-reject"),
    path(
        "tickets/<int:ticket_id>/draft/regenerate",
        draft.draft_regenerate_view,
        name="draft-regenerate",
    ),
    path("tickets/<int:ticket_id>/draft/stream", draft.draft_stream, name="draft-stream"),
    path("tickets/<int:ticket_id>/resolve", ticket.ticket_resolve_view, name="ticket-resolve"),
    path("tickets/<int:ticket_id>/reopen", ticket.ticket_reopen_view, name="ticket-reopen"),
    path("tickets/<int:ticket_id>/intent", ticket.ticket_intent_view, name="ticket-intent"),
    path("knowledge/search", knowledge.knowledge_search, name="knowledge-search"),
    path(
        "knowledge/articles/<int:article_id>/",
        knowledge.knowledge_article_by_id,
        name="knowledge-article-id",
    ),
    path(
        "knowledge/<str:source>/<path:external_id>",
        knowledge.knowledge_article,
        name="knowledge-article",
    ),
]
