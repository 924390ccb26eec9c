"""The demo page: a pretend customer website that embeds the widget with one script tag.

`?as=signed-in` plays the site with a signed-in user: the page's server side signs the
fictional user with the widget key's identity secret, as a real site's server would
(docs/widget-identity.md), so the inbox shows the visitor by name, verified.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.models import WidgetKey, origin_normalize
from apps.accounts.services import widget_identity_hash

# A made-up customer of the made-up shop.
DEMO_USER = {"user_id": "demo-42", "email": "maria@example.com", "name": "Maria Lopez"}
SIGNED_IN = "signed-in"


def demo_widget_key(origin: str) -> WidgetKey | None:
    """The first active widget key that allows this page's origin (the demo data makes one)."""
    origin = origin_normalize(origin)
    for widget_key in WidgetKey.objects.filter(is_active=True).order_by("id"):
        if widget_key.allows_origin(origin):
            return widget_key
    return None


def demo_identity(widget_key: WidgetKey) -> dict[str, str]:
    """The demo user and the signature the site's server computes for them."""
    return {
        **DEMO_USER,
        "hash": widget_identity_hash(secret=widget_key.identity_secret, **DEMO_USER),
    }


def demo_page(request: HttpRequest) -> HttpResponse:
    origin = f"{request.scheme}://{request.get_host()}"
    widget_key = demo_widget_key(origin)
    signed_in = request.GET.get("as") == SIGNED_IN
    return render(
        request,
        "widget/demo.html",
        {
            "widget_key": widget_key,
            "origin": origin,
            "signed_in": signed_in,
            "demo_user": DEMO_USER,
            "identity": demo_identity(widget_key) if widget_key and signed_in else None,
        },
    )
