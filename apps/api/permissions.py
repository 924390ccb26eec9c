"""Scope checks for API keys: reads need `read`, writes need `write`."""

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from apps.accounts.models import ApiKey, ApiKeyScope


class HasApiKeyScope(BasePermission):
    """GET/HEAD/OPTIONS need the `read` scope; every other method needs `write`."""

    message = "this API key lacks the scope for this request"

    def has_permission(self, request: Request, view: object) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        needed = ApiKeyScope.READ if request.method in SAFE_METHODS else ApiKeyScope.WRITE
        if not api_key.has_scope(needed):
            self.message = f"this API key lacks the '{needed}' scope"
            return False
        return True
