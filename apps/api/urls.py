"""REST API v1. Each area adds its routes below."""

from django.urls import path

from apps.api.views.knowledge import (
    ArticleCollectionView,
    ArticleDetailView,
    KnowledgeSearchView,
)
from apps.api.views.ping import PingView

app_name = "api"

urlpatterns = [
    path("ping", PingView.as_view(), name="ping"),
    path("articles", ArticleCollectionView.as_view(), name="articles"),
    path("articles/<path:external_id>", ArticleDetailView.as_view(), name="article"),
    path("knowledge/search", KnowledgeSearchView.as_view(), name="knowledge-search"),
]
