"""OpenAPI helpers: the documented error answers of an operation."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
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
    429: "Too many requests: see Retry-After (seconds).",
    503: "A service this needs (the task broker) is unavailable: nothing was done; try again.",
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


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Strict serializers refuse unknown fields: say so in the schema."""

    target_class = "apps.core.rest.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


# NUL characters are refused in every text field (PostgreSQL cannot store them).
NO_NUL_PATTERN = "^[^\\u0000]*$"


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "apps.core.rest.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema.setdefault("pattern", NO_NUL_PATTERN)
        return schema


class BodyFieldExtension(OpenApiSerializerFieldExtension):
    """A message body: at least one visible character, no NUL, within MESSAGE_MAX_CHARS."""

    target_class = "apps.api.serializers.tickets.BodyField"
    priority = 1  # before StrictCharFieldExtension, which matches it too

    def map_serializer_field(self, auto_schema, direction):  # type: ignore[no-untyped-def]
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema.update(
            minLength=1,
            maxLength=settings.MESSAGE_MAX_CHARS,
            pattern="^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
        )
        return schema
