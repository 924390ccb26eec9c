"""/metrics (Prometheus text for a scraper that holds METRICS_TOKEN) and the insights page
for support leads (/inbox/insights/, any signed-in inbox user)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.operations.insights import PERIODS, insights
from apps.operations.prometheus import exposition


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = _bearer_token(request)
    if not token or not hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse(
            "401: /metrics needs the header 'Authorization: Bearer <METRICS_TOKEN>'\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@login_required(login_url=reverse_lazy("inbox:login"))
def insights_page(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in PERIODS else 30
    return render(request, "operations/insights.html", insights(days=days))
