"""A/B experiments on live traffic: starting one, which arm a ticket gets, stopping, applying
the winner. Reading the outcomes and the verdict is apps/evaluation/experiments.py.

A ticket's arm is a stable hash of the experiment and the ticket, mapped onto the live arms'
weights: every message of a ticket gets the same arm, and nothing is stored to keep it so.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from scipy.stats import norm

from apps.copilot.models import (
    CopilotPolicy,
    Experiment,
    ExperimentArm,
    ExperimentMetric,
    ExperimentStatus,
    PromptTemplate,
)
from apps.copilot.selectors import DRAFT_PURPOSE, EffectivePolicy, policy_effective, prompt_active
from apps.copilot.services.prompt_templates import (
    prompt_template_activate,
    prompt_template_ensure_default,
)
from apps.core.exceptions import ConflictError, ValidationError


@dataclass(frozen=True)
class ArmSpec:
    """One arm as asked for: a name, a share and what it changes (nothing: the control)."""

    name: str
    weight: float = 1.0
    prompt_version: int | None = None
    model_alias: str = ""
    auto_send_threshold: float | None = None


_SPEC_KEYS = {"prompt", "model", "threshold", "share"}


def arm_spec_parse(text: str) -> ArmSpec:
    """`name[:prompt=N][:model=ALIAS][:threshold=X][:share=W]` (the command's and the admin's
    way of writing an arm) as an ArmSpec."""
    name, *parts = text.strip().split(":")
    values: dict[str, str] = {}
    for part in parts:
        key, _, value = part.partition("=")
        if key not in _SPEC_KEYS or not value:
            raise ValidationError(
                f"arm {text!r}: {part!r} is not one of prompt=N, model=ALIAS, threshold=X, share=W",
                field="arms",
            )
        values[key] = value
    try:
        return ArmSpec(
            name=name,
            weight=float(values.get("share", 1)),
            prompt_version=int(values["prompt"]) if "prompt" in values else None,
            model_alias=values.get("model", ""),
            auto_send_threshold=float(values["threshold"]) if "threshold" in values else None,
        )
    except ValueError as error:
        raise ValidationError(f"arm {text!r}: {error}", field="arms") from error


@dataclass(frozen=True)
class ArmChoice:
    """The arm a ticket drafts with, and what it changes for the draft."""

    arm: ExperimentArm
    prompt: PromptTemplate
    # A cached reply was written by whatever model wrote it first: an experiment on models
    # drafts every reply afresh, in every arm, so that the arms compare like with like.
    uses_cache: bool = True

    def policy_for(self, policy: EffectivePolicy) -> EffectivePolicy:
        if self.arm.auto_send_threshold is not None:
            policy = replace(policy, auto_send_threshold=self.arm.auto_send_threshold)
        if self.arm.model_alias:
            policy = replace(policy, draft_alias=self.arm.model_alias)
        return policy


def horizon_per_arm(
    *, baseline: float, effect: float, alpha: float, power: float, comparisons: int
) -> int:
    """Drafts per arm for a two-sided test of two proportions to detect `effect` (absolute)
    from `baseline` with the given power, at `alpha` split over `comparisons` (Bonferroni):
    the usual normal-approximation formula (Fleiss), fixed before the experiment starts."""
    if not 0 < baseline < 1:
        raise ValidationError("the baseline rate must be between 0 and 1", field="baseline")
    if not 0 < effect < 1:
        raise ValidationError("the minimum effect must be between 0 and 1", field="effect")
    if not 0 < alpha < 0.5 or not 0.5 <= power < 1:
        raise ValidationError("alpha must be in (0, 0.5) and power in [0.5, 1)", field="alpha")
    treated = min(baseline + effect, 0.999) if baseline + effect < 1 else baseline - effect
    mean = (baseline + treated) / 2
    z_alpha = norm.ppf(1 - alpha / max(comparisons, 1) / 2)
    z_power = norm.ppf(power)
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        baseline * (1 - baseline) + treated * (1 - treated)
    )
    return max(10, math.ceil(spread**2 / (treated - baseline) ** 2))


def _known_aliases() -> set[str]:
    return {"draft-fast", "draft-strong", *settings.LLM_DEPLOYMENTS}


def _check_specs(arms: list[ArmSpec]) -> None:
    if len(arms) < 2:
        raise ValidationError("an experiment needs at least two arms", field="arms")
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise ValidationError(f"arm names must differ: {names}", field="arms")
    for arm in arms:
        if not arm.name or not arm.name.replace("-", "").replace("_", "").isalnum():
            raise ValidationError(
                f"arm name {arm.name!r}: letters, digits, - and _ only", field="arms"
            )
        if not (arm.weight > 0 and math.isfinite(arm.weight)):
            raise ValidationError(f"arm {arm.name}: the share must be above 0", field="arms")
        if arm.model_alias and arm.model_alias not in _known_aliases():
            raise ValidationError(
                f"arm {arm.name}: model alias {arm.model_alias!r} is not configured "
                f"(known: {', '.join(sorted(_known_aliases()))})",
                field="arms",
            )
        threshold = arm.auto_send_threshold
        if threshold is not None and not 0 <= threshold <= 1:
            raise ValidationError(
                f"arm {arm.name}: the auto-send threshold must be between 0 and 1", field="arms"
            )
    if len({(a.prompt_version, a.model_alias, a.auto_send_threshold) for a in arms}) < len(arms):
        raise ValidationError("two arms change the same things in the same way", field="arms")


def experiment_start(
    *,
    name: str,
    arms: list[ArmSpec],
    primary_metric: str = ExperimentMetric.ACCEPTED,
    baseline_rate: float,
    minimum_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    hypothesis: str = "",
    created_by: str = "",
) -> Experiment:
    """Start an experiment: the first arm is the control (what it leaves unset is pinned to
    the configuration active now), the horizon is computed and stored before any traffic.
    Raises ValidationError for bad arms and ConflictError while another one runs."""
    _check_specs(arms)
    if primary_metric not in ExperimentMetric.values:
        raise ValidationError(
            f"unknown metric {primary_metric!r} (one of {', '.join(ExperimentMetric.values)})",
            field="primary_metric",
        )
    horizon = horizon_per_arm(
        baseline=baseline_rate,
        effect=minimum_effect,
        alpha=alpha,
        power=power,
        comparisons=len(arms) - 1,
    )
    active = prompt_template_ensure_default()
    prompts = {}
    for spec in arms:
        version = spec.prompt_version or active.version
        prompt = PromptTemplate.objects.filter(purpose=DRAFT_PURPOSE, version=version).first()
        if prompt is None:
            raise ValidationError(
                f"arm {spec.name}: there is no draft prompt version {version}", field="arms"
            )
        prompts[spec.name] = prompt
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, hypothesis=hypothesis, primary_metric=primary_metric,
                baseline_rate=baseline_rate, minimum_effect=minimum_effect, alpha=alpha,
                power=power, horizon_per_arm=horizon, created_by=created_by,
            )  # fmt: skip
            for position, spec in enumerate(arms):
                ExperimentArm.objects.create(
                    experiment=experiment,
                    name=spec.name,
                    position=position,
                    is_control=position == 0,
                    weight=spec.weight,
                    prompt=prompts[spec.name],
                    prompt_version=prompts[spec.name].version,
                    model_alias=spec.model_alias,
                    auto_send_threshold=spec.auto_send_threshold,
                )
    except IntegrityError as error:
        running = Experiment.objects.filter(status=ExperimentStatus.RUNNING).first()
        if running is not None:
            raise ConflictError(
                f"experiment {running.name!r} is running: stop it first", field="name"
            ) from error
        raise ConflictError(f"an experiment named {name!r} exists", field="name") from error
    return experiment


def experiment_running() -> Experiment | None:
    return Experiment.objects.filter(status=ExperimentStatus.RUNNING).first()


def _unit(experiment_id: int, ticket_id: int) -> float:
    """A number in [0, 1) fixed by the experiment and the ticket (uniform over tickets)."""
    digest = hashlib.sha256(f"deskpilot-experiment:{experiment_id}:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_pick(arms: list[ExperimentArm], experiment_id: int, ticket_id: int) -> ExperimentArm:
    """The arm whose slice of the weights the ticket's hash falls in."""
    total = sum(arm.weight for arm in arms)
    point = _unit(experiment_id, ticket_id) * total
    for arm in arms:
        point -= arm.weight
        if point < 0:
            return arm
    return arms[-1]


def _live_arms(experiment: Experiment) -> list[ExperimentArm]:
    """The arms still running; an arm whose prompt version was deleted is stopped here (the
    others go on; fewer than two left stops the experiment)."""
    arms = list(experiment.arms.select_related("prompt"))
    for arm in arms:
        if arm.stopped_at is None and arm.prompt_id is None:
            ExperimentArm.objects.filter(pk=arm.pk, stopped_at__isnull=True).update(
                stopped_at=timezone.now(),
                stopped_reason=f"its prompt version {arm.prompt_version} was deleted",
            )
            arm.stopped_at = timezone.now()
    live = [arm for arm in arms if arm.stopped_at is None]
    if len(live) < 2:
        experiment_end(
            experiment=experiment,
            status=ExperimentStatus.STOPPED,
            reason="fewer than two arms left running",
        )
        return []
    return live


def experiment_arm_for(*, ticket_id: int) -> ArmChoice | None:
    """The running experiment's arm for this ticket, with the prompt it drafts with; None
    when no experiment runs."""
    experiment = experiment_running()
    if experiment is None:
        return None
    live = _live_arms(experiment)
    if not live:
        return None
    arm = arm_pick(live, experiment.pk, ticket_id)
    return ArmChoice(
        arm=arm,
        prompt=arm.prompt,  # type: ignore[arg-type]  # a live arm has its prompt
        uses_cache=not any(a.model_alias for a in live),
    )


@dataclass(frozen=True)
class DraftingSetup:
    """What a ticket's next draft is written with: the active prompt and policy, or its
    experiment arm's."""

    prompt: PromptTemplate
    policy: EffectivePolicy
    use_cache: bool
    arm_id: int | None


def drafting_setup(*, ticket_id: int) -> DraftingSetup:
    policy = policy_effective()
    choice = experiment_arm_for(ticket_id=ticket_id)
    if choice is None:
        return DraftingSetup(prompt_template_ensure_default(), policy, True, None)
    return DraftingSetup(choice.prompt, choice.policy_for(policy), choice.uses_cache, choice.arm.pk)


def experiment_end(*, experiment: Experiment, status: str, reason: str, winner_id=None) -> bool:
    """Finish (horizon reached) or stop (early) a running experiment; False when it was not
    running any more."""
    return bool(
        Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.RUNNING).update(
            status=status, ended_at=timezone.now(), end_reason=reason[:500], winner_id=winner_id
        )
    )


def experiment_arm_apply(
    *, arm: ExperimentArm, override_reason: str = "", requested_by: str = ""
) -> list[str]:
    """Make the arm's configuration the live one: its prompt version through the regression
    gate (ActivationRefusedError leaves everything as it was), then its model alias and
    threshold on the policy. Returns what changed, in words."""
    changed = []
    active = prompt_active()
    if arm.prompt is not None and (active is None or active.pk != arm.prompt.pk):
        prompt_template_activate(
            prompt=arm.prompt, override_reason=override_reason, requested_by=requested_by
        )
        changed.append(f"prompt v{arm.prompt.version} is active")
    fields: dict[str, object] = {}
    if arm.model_alias:
        fields["draft_alias"] = arm.model_alias
        changed.append(f"every draft is written by {arm.model_alias}")
    if arm.auto_send_threshold is not None:
        fields["auto_send_threshold"] = arm.auto_send_threshold
        changed.append(f"auto-send threshold {arm.auto_send_threshold:g}")
    if fields:
        with transaction.atomic():
            policy, _ = CopilotPolicy.objects.select_for_update().get_or_create(singleton=True)
            CopilotPolicy.objects.filter(pk=policy.pk).update(updated_at=timezone.now(), **fields)
    Experiment.objects.filter(pk=arm.experiment_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=f"arm {arm.name} promoted"
    )
    Experiment.objects.filter(pk=arm.experiment_id).update(
        status=ExperimentStatus.PROMOTED, winner=arm
    )
    return changed or ["nothing: the arm runs the configuration already active"]
