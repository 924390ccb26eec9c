"""Knowledge endpoints: a CMS pushes articles; agents and tools search them."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.knowledge_serializers import (
    ArticleBulkDeleteSerializer,
    ArticleBulkWriteSerializer,
    ArticleOutcomeSerializer,
    ArticlePushResponseSerializer,
    ArticlesDeletedSerializer,
    ArticleWriteSerializer,
    SearchQuerySerializer,
    SearchResponseSerializer,
)
from apps.copilot.search import knowledge_search
from apps.core.exceptions import NotFoundError
from apps.knowledge.services import (
    UpsertReport,
    article_input_build,
    articles_delete,
    articles_push,
)


def _item(data: dict):  # type: ignore[no-untyped-def]
    return article_input_build(
        external_id=data["external_id"],
        title=data["title"],
        body=data["body"],
        body_format=data["format"],
        url=data["url"],
        language=data["language"],
        visibility=data["visibility"],
        tags=data["tags"],
        status=data["status"],
    )


def _outcomes(report: UpsertReport) -> list[dict]:
    return [
        {
            "external_id": o.external_id,
            "result": o.result,
            "reason": o.reason,
            "article_id": o.article_id,
        }
        for o in report.outcomes
    ]


class ArticleCollectionView(APIView):
    """POST: create or replace articles (one object, or {"articles": [...]}, up to 100).

    Unchanged articles are not re-embedded. DELETE: {"external_ids": [...]} removes articles.
    """

    @staticmethod
    def json_max_bytes() -> int:
        return settings.KNOWLEDGE_API_MAX_REQUEST_BYTES

    @extend_schema(
        operation_id="articles_push",
        request=ArticleBulkWriteSerializer,
        responses=ArticlePushResponseSerializer,
    )
    def post(self, request: Request) -> Response:
        payload = request.data
        if isinstance(payload, dict) and "articles" not in payload:
            single = ArticleWriteSerializer(data=payload)
            single.is_valid(raise_exception=True)
            source = str(payload.get("source") or "api")
            items = [_item(single.validated_data)]
        else:
            bulk = ArticleBulkWriteSerializer(
                data=payload if isinstance(payload, dict) else {"articles": payload}
            )
            bulk.is_valid(raise_exception=True)
            source = bulk.validated_data["source"]
            items = [_item(data) for data in bulk.validated_data["articles"]]
        report = articles_push(source_name=source, items=items)
        outcomes = _outcomes(report)
        stored = any(o["result"] in {"added", "updated"} for o in outcomes)
        return Response(
            {"results": outcomes}, status=status.HTTP_201_CREATED if stored else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="articles_delete",
        request=ArticleBulkDeleteSerializer,
        responses=ArticlesDeletedSerializer,
    )
    def delete(self, request: Request) -> Response:
        serializer = ArticleBulkDeleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deleted = articles_delete(
            source_name=serializer.validated_data["source"],
            external_ids=serializer.validated_data["external_ids"],
        )
        return Response({"deleted": deleted})


class ArticleDetailView(APIView):
    """PUT: create or replace the article at this external_id. DELETE: remove it."""

    @extend_schema(
        operation_id="article_put",
        request=ArticleWriteSerializer,
        responses=ArticleOutcomeSerializer,
        parameters=[OpenApiParameter("source", str, default="api")],
    )
    def put(self, request: Request, external_id: str) -> Response:
        data = dict(request.data) if isinstance(request.data, dict) else {}
        data["external_id"] = external_id
        serializer = ArticleWriteSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        source = request.query_params.get("source", "api")
        report = articles_push(source_name=source, items=[_item(serializer.validated_data)])
        outcome = _outcomes(report)[0]
        if outcome["result"] == "failed":
            return Response(
                {"error": {"code": "invalid", "message": outcome["reason"]}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        code = status.HTTP_201_CREATED if outcome["result"] == "added" else status.HTTP_200_OK
        return Response(outcome, status=code)

    @extend_schema(
        operation_id="article_delete",
        parameters=[OpenApiParameter("source", str, default="api")],
        responses={204: None},
    )
    def delete(self, request: Request, external_id: str) -> Response:
        source = request.query_params.get("source", "api")
        if not articles_delete(source_name=source, external_ids=[external_id]):
            raise NotFoundError(f"no article {external_id!r} in source {source!r}")
        return Response(status=status.HTTP_204_NO_CONTENT)


class KnowledgeSearchView(APIView):
    """Search of published articles (hybrid, intent-aware by default): the best passage per
    article, best first, and how the query was read."""

    @extend_schema(
        operation_id="knowledge_search",
        parameters=[SearchQuerySerializer],
        responses=SearchResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        serializer = SearchQuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tags = [tag.strip() for tag in data.get("tags", "").split(",") if tag.strip()]
        hits, reading = knowledge_search(
            query=data["q"],
            k=data["k"],
            mode=data["mode"],
            intents=data["intents"],
            visibility=[data["visibility"]] if data.get("visibility") else None,
            language=data.get("language"),
            tags=tags or None,
            source=data.get("source"),
        )
        return Response({"results": [asdict(hit) for hit in hits], "reading": asdict(reading)})
