"""OpenAPI helpers: the documented error answers of an operation."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from apps.api.serializers.strict import ErrorSerializer

_DESCRIPTIONS = {
    400: "Invalid input: the message names the field and the problem.",
    401: "Missing, invalid or revoked API key.",
    403: "The API key lacks the scope.",
    404: "No such object.",
    409: "The object changed or conflicts with another.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    422: "The Idempotency-Key was already used with a different request.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code])
        for code in codes
    }


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (1-255 visible ASCII characters). A retry with the same key and "
        "the same body returns the first answer and creates nothing; the same key with a "
        "different body is refused with 422."
    ),
    pattern=r"^[\x21-\x7e]{1,255}$",
)
