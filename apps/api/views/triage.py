"""POST /api/v1/triage/classify: Deskpilot's triage for other systems."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiKey, ApiKeyScope
from apps.triage.services import messages_classify


class HasReadScope(BasePermission):
    """Classifying stores and changes nothing, so a POST here needs only `read`."""

    message = "this API key lacks the 'read' scope"

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.has_scope(ApiKeyScope.READ)


class ClassifyRequestSerializer(serializers.Serializer):
    texts = serializers.ListField(
        child=serializers.CharField(
            allow_blank=True,
            trim_whitespace=False,
            max_length=settings.TRIAGE_MAX_MESSAGE_CHARS,
        ),
        min_length=1,
        max_length=settings.TRIAGE_MAX_BATCH,
    )


class IntentProbabilitySerializer(serializers.Serializer):
    intent = serializers.CharField()
    probability = serializers.FloatField()


class ClassificationSerializer(serializers.Serializer):
    intent = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField()
    alternatives = IntentProbabilitySerializer(many=True)
    out_of_scope = serializers.BooleanField()
    classifier_version_id = serializers.IntegerField(allow_null=True)
    handoff_policy = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_null=True)
    asks_for_human = serializers.BooleanField()
    urgency = serializers.CharField()
    urgency_score = serializers.FloatField()
    sentiment = serializers.CharField()
    sentiment_score = serializers.FloatField()


class ClassifyResponseSerializer(serializers.Serializer):
    results = ClassificationSerializer(many=True)


class TriageClassifyView(APIView):
    """Intent, calibrated confidence, top-3 alternatives, out-of-scope flag and message
    signals for each text, in order. Up to 256 texts of up to 20 000 characters each."""

    permission_classes = [HasReadScope]

    @staticmethod
    def json_max_bytes() -> int:
        # A full batch at the character cap, every character written as a \uXXXX escape.
        return settings.TRIAGE_MAX_BATCH * settings.TRIAGE_MAX_MESSAGE_CHARS * 6 + 64 * 1024

    @extend_schema(request=ClassifyRequestSerializer, responses=ClassifyResponseSerializer)
    def post(self, request: Request) -> Response:
        serializer = ClassifyRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = messages_classify(texts=serializer.validated_data["texts"])
        return Response({"results": [result.as_json() for result in results]})
