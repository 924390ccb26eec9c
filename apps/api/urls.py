"""REST API v1. Each area adds its routes below."""

from django.urls import path

from apps.api.views.ping import PingView
from apps.api.views.triage import TriageClassifyView

app_name = "api"

urlpatterns = [
    path("ping", PingView.as_view(), name="ping"),
    path("triage/classify", TriageClassifyView.as_view(), name="triage-classify"),
]
