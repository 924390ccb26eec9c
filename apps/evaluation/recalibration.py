"""The confidence calibration refitted from live outcomes and proposed as a new version,
through the regression gate (beat, every CALIBRATION_REFIT_DAYS).

A live draft is labelled only where someone said whether it was right: an agent sent it as
drafted or with a light edit (edit ratio under CALIBRATION_LIGHT_EDIT: right), rewrote it
heavily (FEEDBACK_HEAVY_EDIT_RATIO or more) or rejected it (wrong); a customer gave an
auto-sent reply a thumbs-up (right), or complained about it: a thumbs-down, a low CSAT or
the ticket reopened soon after (wrong). Silence is not a label, and edits between the two
ratios are left out as ambiguous. Only drafts whose fate the confidence decided (auto-sent,
or held back for low confidence) count, as in the gold-set calibration.

Caveat, stated in the version's metrics: these labels come mostly from drafts agents
reviewed (below the threshold) and from the auto-sent replies customers bothered to rate,
not from a random sample of traffic. The gate, which compares the new version with the
active one on the gold sets, is what stops a biased refit from going live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.copilot.calibration import calibration_activate, calibration_store
from apps.copilot.confidence import ConfidenceFeatures, calibration_fit, threshold_for_precision
from apps.copilot.models import Calibration, Decision, Draft, HandoffReason
from apps.core.exceptions import ActivationRefusedError
from apps.feedback.models import (
    DraftAction,
    DraftActionKind,
    FlaggedReply,
    FlagReason,
    RatingValue,
    ReplyRating,
)

LIVE_PREFIX = "live outcomes"
COMPLAINTS = (FlagReason.THUMBS_DOWN, FlagReason.LOW_CSAT, FlagReason.REOPENED)


@dataclass
class Refit:
    labelled: int
    right: int
    calibration: Calibration | None = None
    activated: bool = False
    refused: str = ""
    skipped: str = ""


def live_labels(*, since) -> list[tuple[ConfidenceFeatures, bool]]:  # type: ignore[no-untyped-def]
    """(features, right) for each live draft since `since` that someone judged."""
    return [
        (ConfidenceFeatures.from_stored(features), right)
        for _, _, features, right in live_judgements(since=since)
        if features
    ]


def auto_send_precision(*, since) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(right, judged) among the replies auto-sent since `since` that someone judged."""
    verdicts = [
        right
        for _, decision, _, right in live_judgements(since=since)
        if decision == Decision.AUTO_SENT
    ]
    return sum(verdicts), len(verdicts)


def live_judgements(*, since, until=None) -> list[tuple[int, str, dict, bool]]:  # type: ignore[no-untyped-def]
    """(draft id, decision, confidence features, right) for each live draft written since
    `since` (and before `until`) whose fate the confidence decided and that someone judged
    (the module docstring's rules)."""
    window = Q(evaluation=False, created_at__gte=since)
    if until is not None:
        window &= Q(created_at__lt=until)
    drafts = Draft.objects.filter(window).filter(
        Q(decision=Decision.AUTO_SENT) | Q(reason=HandoffReason.LOW_CONFIDENCE)
    )
    rows = list(drafts.values("id", "decision", "confidence_features"))
    ids = [row["id"] for row in rows]
    actions = {
        a["draft_id"]: a
        for a in DraftAction.objects.filter(draft_id__in=ids).values(
            "draft_id", "kind", "edit_ratio"
        )
    }
    complained = set(
        FlaggedReply.objects.filter(draft_id__in=ids, reason__in=COMPLAINTS).values_list(
            "draft_id", flat=True
        )
    )
    liked = set(
        ReplyRating.objects.filter(draft_id__in=ids, value=RatingValue.UP).values_list(
            "draft_id", flat=True
        )
    )
    judged = []
    for row in rows:
        action = actions.get(row["id"])
        label: bool | None = None
        if row["id"] in complained or (
            action is not None and action["kind"] == DraftActionKind.REJECTED
        ):
            label = False
        elif action is not None:
            ratio = action["edit_ratio"]
            if ratio < settings.CALIBRATION_LIGHT_EDIT:
                label = True
            elif ratio >= settings.FEEDBACK_HEAVY_EDIT_RATIO:
                label = False
        elif row["id"] in liked:
            label = True
        if label is not None:
            judged.append((row["id"], row["decision"], row["confidence_features"], label))
    return judged


def calibration_refit_from_live(*, days: int | None = None, activate: bool = True) -> Refit:
    """Fit a calibration on the labelled live drafts of the last `days`, store it as a new
    version with a threshold for the active calibration's target precision, and (with
    `activate`) activate it through the gate. Skipped, saying why, when there are too few
    labels of either kind."""
    days = days or settings.CALIBRATION_REFIT_WINDOW_DAYS
    labels = live_labels(since=timezone.now() - timedelta(days=days))
    right = sum(label for _, label in labels)
    refit = Refit(labelled=len(labels), right=right)
    minimum = settings.CALIBRATION_REFIT_MIN_EACH
    if right < minimum or len(labels) - right < minimum:
        refit.skipped = (
            f"{right} right and {len(labels) - right} wrong judged drafts in {days} days; "
            f"at least {minimum} of each are needed"
        )
        return refit
    active = Calibration.objects.filter(is_active=True).first()
    target = (active.target_precision if active else None) or settings.CALIBRATION_TARGET_PRECISION
    fitted = calibration_fit([f for f, _ in labels], [label for _, label in labels])
    threshold = threshold_for_precision(
        fitted["metrics"]["held_out_scores"],
        [label for _, label in labels],
        target_precision=target,
    )
    weights = {k: fitted[k] for k in ("method", "feature_names", "weights", "bias")}
    metrics = {
        **{k: v for k, v in fitted["metrics"].items() if k != "held_out_scores"},
        "labelled_drafts": len(labels),
        "right": right,
        "caveat": "labels from agents' actions and customers' explicit feedback, not a "
        "random sample of traffic",
    }
    refit.calibration = calibration_store(
        weights=weights,
        metrics=metrics,
        threshold=1.0 if threshold is None else threshold,
        target_precision=target,
        fitted_on=f"{LIVE_PREFIX} of the last {days} days",
    )
    if activate:
        try:
            calibration_activate(calibration=refit.calibration, requested_by="live refit")
            refit.activated = True
        except ActivationRefusedError as error:
            refit.refused = error.message
    return refit


def calibration_refit_if_due() -> Refit | None:
    """The beat task's work: a refit when the last live one is older than the interval."""
    latest = (
        Calibration.objects.filter(gold_set__startswith=LIVE_PREFIX).order_by("-created_at").first()
    )
    interval = timedelta(days=settings.CALIBRATION_REFIT_DAYS)
    if latest is not None and timezone.now() - latest.created_at < interval * 0.9:
        return None
    return calibration_refit_from_live()
