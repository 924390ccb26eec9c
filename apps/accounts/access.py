"""Typed access to the signed-in user of a request."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.accounts.models import User


def request_user(request: HttpRequest) -> User:
    """The signed-in `User` of a request that a login check (the admin site, a
    login_required view) already let through. Anonymous requests never get here; should one
    slip through, it is refused with a 403 rather than acted on in nobody's name."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("sign in first")
    return user
