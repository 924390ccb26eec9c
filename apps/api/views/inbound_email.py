"""Inbound email webhook: a raw RFC 822 email in, a customer message stored and threaded."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.idempotency import idempotent
from apps.api.openapi import IDEMPOTENCY_KEY_PARAMETER, error_responses
from apps.api.parsers import PlainTextEmailParser, RawEmailParser
from apps.api.serializers.tickets import InboundEmailResultSerializer
from apps.core.exceptions import ValidationError
from apps.safety.throttle import limit_hit
from apps.tickets.email_inbound import email_ingest
from apps.tickets.services import Actor


class InboundEmailView(APIView):
    parser_classes = [RawEmailParser, PlainTextEmailParser]

    @extend_schema(
        summary="Receive a raw email (RFC 822) from a mail provider's webhook",
        description=(
            "The body is the raw email (`message/rfc822` or `text/plain`), at most "
            "INBOUND_EMAIL_MAX_BYTES. It is threaded into an existing ticket by "
            "In-Reply-To/References, else opens a new ticket. The same Message-ID twice "
            "stores one message (200 with is_duplicate)."
        ),
        request={"message/rfc822": OpenApiTypes.BINARY, "text/plain": OpenApiTypes.STR},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: InboundEmailResultSerializer,
            200: OpenApiResponse(
                InboundEmailResultSerializer, description="Already stored (same Message-ID)."
            ),
            **error_responses(400, 401, 403, 413, 415, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        raw = request.data
        if not isinstance(raw, bytes):  # an empty body parses to an empty dict
            raise ValidationError("the request body must be a raw email", field="email")
        api_key = request.auth

        def ingest() -> Response:
            result = email_ingest(
                raw=raw,
                actor=Actor.for_api_key(api_key),
                admit=lambda sender: limit_hit("email_sender", sender),
            )
            message = result.message
            body = InboundEmailResultSerializer(
                {
                    "ticket_id": message.ticket_id,
                    "message_id": message.pk,
                    "is_duplicate": not result.is_created,
                    "notes": message.metadata.get("intake_notes", []),
                }
            ).data
            code = status.HTTP_201_CREATED if result.is_created else status.HTTP_200_OK
            return Response(body, status=code)

        return idempotent(request, ingest)
