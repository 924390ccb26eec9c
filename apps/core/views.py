"""Pages of the site as a whole (not of one app)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the API docs, a JSON
    answer): the SVG icon the pages link. Resolved per request, as the static files'
    manifest (hashed names) exists only once `collectstatic` ran."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
