"""The demo page: a pretend customer website that embeds the widget with one script tag."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.models import WidgetKey, origin_normalize


def demo_widget_key(origin: str) -> WidgetKey | None:
    """The first active widget key that allows this page's origin (the demo data makes one)."""
    origin = origin_normalize(origin)
    for widget_key in WidgetKey.objects.filter(is_active=True).order_by("id"):
        if widget_key.allows_origin(origin):
            return widget_key
    return None


def demo_page(request: HttpRequest) -> HttpResponse:
    origin = f"{request.scheme}://{request.get_host()}"
    return render(
        request,
        "widget/demo.html",
        {"widget_key": demo_widget_key(origin), "origin": origin},
    )
