"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import DeskpilotError

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when the database is away (a restart, a failover).
DATABASE_DOWN_RETRY_AFTER = 5


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"customer.email": ["Enter a valid email address."]}."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, name))
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        fields = {}
        for index, item in enumerate(detail):
            fields.update(_flatten(item, f"{prefix}[{index}]"))
        return fields
    return {prefix or "non_field_errors": [str(detail)]}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DeskpilotError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.field:
            body["fields"] = {exc.field: [exc.message]}
        answer = Response({"error": body}, status=exc.status_code)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            answer["Retry-After"] = str(retry_after)
        return answer
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is away (restarting, failing over, out of connections): the client
        # can do something about that (retry), unlike a bug, so it is told so, not a 500.
        logger.warning("database unavailable: %s", exc)
        answer = Response(
            {
                "error": {
                    "code": "unavailable",
                    "message": "the database is unavailable, so this request may not have "
                    "been stored: try again shortly (with the same Idempotency-Key)",
                }
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        answer["Retry-After"] = str(DATABASE_DOWN_RETRY_AFTER)
        return answer
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first_field, first_messages = next(iter(fields.items()))
        message = f"{first_field}: {first_messages[0]}"
        response.data = {"error": {"code": "invalid", "message": message, "fields": fields}}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = {"error": {"code": code, "message": str(exc.detail)}}
    return response
