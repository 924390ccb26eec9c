"""REST API v1. Each area adds its routes below."""

from django.urls import path

from apps.api.views.drafts import (
    DraftRegenerateView,
    DraftRejectView,
    DraftSendView,
    DraftStreamView,
)
from apps.api.views.evaluation import (
    EvalRunDetailView,
    EvalRunListView,
    ExperimentDetailView,
    ExperimentListView,
)
from apps.api.views.inbound_email import InboundEmailView
from apps.api.views.knowledge import (
    ArticleCollectionView,
    ArticleDetailView,
    KnowledgeSearchView,
)
from apps.api.views.ping import PingView
from apps.api.views.tickets import TicketDetailView, TicketListCreateView, TicketMessageCreateView
from apps.api.views.triage import TriageClassifyView
from apps.api.views.webhooks import (
    WebhookDeliveryListView,
    WebhookDeliveryResendView,
    WebhookDetailView,
    WebhookListCreateView,
)

app_name = "api"

urlpatterns = [
    path("ping", PingView.as_view(), name="ping"),
    path("tickets", TicketListCreateView.as_view(), name="tickets"),
    path("tickets/<str:ticket_id>", TicketDetailView.as_view(), name="ticket-detail"),
    path(
        "tickets/<str:ticket_id>/messages",
        TicketMessageCreateView.as_view(),
        name="ticket-messages",
    ),
    path("tickets/<str:ticket_id>/draft/stream", DraftStreamView.as_view(), name="draft-stream"),
    path("tickets/<str:ticket_id>/draft/send", DraftSendView.as_view(), name="draft-send"),
    path("tickets/<str:ticket_id>/draft/reject", DraftRejectView.as_view(), name="draft-reject"),
    path(
        "tickets/<str:ticket_id>/draft/regenerate",
        DraftRegenerateView.as_view(),
        name="draft-regenerate",
    ),
    path("inbound/email", InboundEmailView.as_view(), name="inbound-email"),
    path("articles", ArticleCollectionView.as_view(), name="articles"),
    path("articles/<path:external_id>", ArticleDetailView.as_view(), name="article"),
    path("knowledge/search", KnowledgeSearchView.as_view(), name="knowledge-search"),
    path("eval/runs", EvalRunListView.as_view(), name="eval-runs"),
    path("eval/runs/<str:run_id>", EvalRunDetailView.as_view(), name="eval-run"),
    path("experiments", ExperimentListView.as_view(), name="experiments"),
    path("experiments/<str:experiment_id>", ExperimentDetailView.as_view(), name="experiment"),
    path("triage/classify", TriageClassifyView.as_view(), name="triage-classify"),
    path("webhooks", WebhookListCreateView.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<str:delivery_id>/resend",
        WebhookDeliveryResendView.as_view(),
        name="webhook-delivery-resend",
    ),
]
