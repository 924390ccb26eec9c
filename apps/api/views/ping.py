from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.authentication import request_api_key


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
        api_key = request_api_key(request)
        return Response({"status": "ok", "api_key": api_key.name, "scopes": api_key.scopes})
