"""Evaluation runs and A/B experiments, read-only: GET /api/v1/eval/runs[/{id}] and
GET /api/v1/experiments[/{id}]."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.openapi import error_responses
from apps.copilot.models import Experiment, ExperimentStatus
from apps.core.exceptions import NotFoundError, ValidationError
from apps.core.text import ascii_digits
from apps.evaluation.experiments import experiment_report
from apps.evaluation.models import EvalResult, EvalRun

MAX_LIST = 200


RUN_FIELDS: tuple[str, ...] = (
    "id", "gold_set", "label", "status", "items_total", "items_done", "config",
    "metrics", "error", "created_at", "started_at", "finished_at",
)  # fmt: skip


class EvalRunSerializer(serializers.ModelSerializer):
    gold_set = serializers.CharField(source="gold_set.name")

    class Meta:
        model = EvalRun
        fields = RUN_FIELDS
        read_only_fields = RUN_FIELDS


class EvalResultSerializer(serializers.ModelSerializer):
    question = serializers.CharField(source="item.question", default=None)

    class Meta:
        model = EvalResult
        fields = (
            "item_key", "question", "intent", "intent_correct", "articles", "article_rank",
            "cited_article", "decision", "reason", "confidence", "correct", "model",
            "stage_timings", "input_tokens", "output_tokens", "cost_usd", "error",
        )  # fmt: skip
        read_only_fields = fields


class EvalRunDetailSerializer(EvalRunSerializer):
    results = EvalResultSerializer(many=True)

    class Meta:
        model = EvalRun
        fields = (*RUN_FIELDS, "results")
        read_only_fields = fields


class EvalRunListView(APIView):
    @extend_schema(
        summary="Evaluation runs, newest first",
        parameters=[
            OpenApiParameter("gold_set", str, description="only runs on this gold set"),
            OpenApiParameter("limit", int, description=f"at most this many (1-{MAX_LIST}, 50)"),
        ],
        responses={200: EvalRunSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "50")
        if not ascii_digits(raw) or not 1 <= int(raw) <= MAX_LIST:
            raise ValidationError(
                f"limit must be a whole number from 1 to {MAX_LIST}", field="limit"
            )
        runs = EvalRun.objects.select_related("gold_set").order_by("-id")
        if "gold_set" in request.query_params:
            runs = runs.filter(gold_set__name=request.query_params["gold_set"])
        return Response(EvalRunSerializer(runs[: int(raw)], many=True).data)


class EvalRunDetailView(APIView):
    @extend_schema(
        summary="One evaluation run with its figures and every item's result",
        responses={200: EvalRunDetailSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = None
        if ascii_digits(run_id):
            run = (
                EvalRun.objects.select_related("gold_set")
                .prefetch_related("results__item")
                .filter(pk=int(run_id))
                .first()
            )
        if run is None:
            raise NotFoundError(f"evaluation run {run_id[:40]!r} does not exist", field="run_id")
        return Response(EvalRunDetailSerializer(run).data)


class ExperimentListView(APIView):
    @extend_schema(
        summary="A/B experiments, newest first (the running one, if any, first)",
        operation_id="api_v1_experiments_list",
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        experiments = Experiment.objects.order_by("-id")[:MAX_LIST]
        return Response([
            {"id": e.pk, "name": e.name, "status": e.status, "primary_metric": e.primary_metric,
             "horizon_per_arm": e.horizon_per_arm, "started_at": e.started_at.isoformat(),
             "ended_at": e.ended_at.isoformat() if e.ended_at else None}
            for e in sorted(experiments, key=lambda e: e.status != ExperimentStatus.RUNNING)
        ])  # fmt: skip


class ExperimentDetailView(APIView):
    @extend_schema(
        summary="One A/B experiment: its arms, per-arm live outcomes with 95% intervals, the "
        "comparisons with the control, the stopping rule and (at the horizon) the verdict",
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, experiment_id: str) -> Response:
        experiment = None
        if ascii_digits(experiment_id):
            experiment = Experiment.objects.filter(pk=int(experiment_id)).first()
        else:
            experiment = Experiment.objects.filter(name=experiment_id).first()
        if experiment is None:
            raise NotFoundError(
                f"experiment {experiment_id[:40]!r} does not exist", field="experiment_id"
            )
        return Response(experiment_report(experiment))
