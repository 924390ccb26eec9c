from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    """Check an API key: answers with the key's name and scopes. Needs any valid key."""

    @extend_schema(
        responses=inline_serializer(
            "Ping",
            {
                "status": serializers.CharField(),
                "api_key": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"status": "ok", "api_key": request.auth.name, "scopes": request.auth.scopes}
        )
