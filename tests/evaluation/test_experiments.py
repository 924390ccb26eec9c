"""A/B experiments on live traffic: tickets split by a stable hash at the stated shares, each
draft written with its arm's prompt and recording its arm, per-arm outcomes in the API, the
verdict read at the fixed horizon, the winner promoted through the gate, an arm whose prompt
version is deleted stopped while the others go on."""

from __future__ import annotations

import math

import pytest
from django.core.management import CommandError, call_command

from apps.copilot.models import (
    CopilotPolicy,
    Draft,
    Experiment,
    ExperimentArm,
    ExperimentStatus,
    PromptTemplate,
)
from apps.copilot.services import pipeline_run, prompt_template_publish
from apps.copilot.services.experiments import (
    ArmSpec,
    arm_pick,
    experiment_start,
    horizon_per_arm,
)
from apps.core.exceptions import ConflictError, ValidationError
from apps.evaluation.experiments import experiments_close_due
from apps.evaluation.models import GateDecision
from apps.tickets.models import Message

pytestmark = pytest.mark.slow

QUESTIONS = (
    "I forgot my password and the reset email never came",
    "When will my refund arrive?",
    "Where is my parcel? I want to track my order",
    "I was charged twice for the same order",
)


def _post(client, n: int, start: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    """n tickets posted through the API, each drafted by the pipeline; their ids."""
    ids = []
    for i in range(start, start + n):
        posted = client.post(
            "/api/v1/tickets",
            {"customer": {"email": f"c{i}@example.com"}, "body": QUESTIONS[i % len(QUESTIONS)]},
            format="json",
        )
        assert posted.status_code == 201, posted.content
        ids.append(posted.json()["id"])
        pipeline_run(message_id=Message.objects.get(ticket_id=ids[-1]).pk)
    return ids


def _prompt_file(tmp_path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "prompt.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_ticket_keeps_its_arm_and_tickets_split_by_the_weights():
    arms = [ExperimentArm(name="a", weight=1.0), ExperimentArm(name="b", weight=3.0)]
    picks = [arm_pick(arms, 7, ticket_id).name for ticket_id in range(1, 4001)]
    share = picks.count("b") / len(picks)
    assert abs(share - 0.75) < 3 * math.sqrt(0.75 * 0.25 / len(picks))
    assert [arm_pick(arms, 7, t).name for t in range(1, 50)] == picks[:49]  # stable
    # another experiment splits the same tickets independently
    other = [arm_pick(arms, 8, ticket_id).name for ticket_id in range(1, 4001)]
    assert 0.3 < sum(x != y for x, y in zip(picks, other, strict=True)) / 4000 < 0.45


def test_the_horizon_is_the_two_proportion_sample_size_and_grows_with_comparisons():
    # 0.5 vs 0.6, two-sided alpha 0.05, power 0.8: 388 per arm (Fleiss, no correction)
    assert horizon_per_arm(baseline=0.5, effect=0.1, alpha=0.05, power=0.8, comparisons=1) == 388
    two = horizon_per_arm(baseline=0.5, effect=0.1, alpha=0.05, power=0.8, comparisons=2)
    assert two > 388
    with pytest.raises(ValidationError, match="baseline"):
        horizon_per_arm(baseline=1.5, effect=0.1, alpha=0.05, power=0.8, comparisons=1)


def test_an_experiment_between_two_prompts_splits_tickets_and_reports_per_arm(
    copilot_ready, api_key_client, tmp_path, capsys, settings
):
    settings.COPILOT_AUTO_SEND_THRESHOLD = 1.0  # every draft waits for an agent
    client = api_key_client()
    # given: a second prompt version, stored inactive, and an experiment giving it 3 in 4
    call_command("prompt_publish", _prompt_file(tmp_path, "You are Fernhill's helper. Be brief."))
    v1 = PromptTemplate.objects.get(is_active=True)
    v2 = PromptTemplate.objects.get(version=v1.version + 1)
    assert not v2.is_active
    call_command(
        "experiment", "start", "brief-prompt", "--arm", "control", "--arm",
        f"brief:prompt={v2.version}:share=3", "--baseline", "0.5", "--effect", "0.1",
    )  # fmt: skip
    assert "fixed horizon" in capsys.readouterr().out
    experiment = Experiment.objects.get(name="brief-prompt")
    control, brief = experiment.arms.order_by("position")
    assert (control.prompt_version, brief.prompt_version) == (v1.version, v2.version)
    # when: tickets are posted and drafted
    ids = _post(client, 48)
    drafts = list(Draft.objects.filter(ticket_id__in=ids, generation=1))
    # then: each draft was written by its arm's prompt, at the stated share (within noise)
    assert len(drafts) == 48 and all(d.experiment_arm_id for d in drafts)
    assert all(
        d.prompt_id == (brief.prompt_id if d.experiment_arm_id == brief.pk else control.prompt_id)
        for d in drafts
    )
    share = sum(d.experiment_arm_id == brief.pk for d in drafts) / len(drafts)
    assert abs(share - 0.75) <= 3 * math.sqrt(0.75 * 0.25 / 48)
    # a follow-up on a ticket stays in its arm
    first = drafts[0]
    follow = client.post(
        f"/api/v1/tickets/{first.ticket_id}/messages", {"body": "Thanks, and one more thing?"},
        format="json",
    )  # fmt: skip
    assert follow.status_code == 201, follow.content
    again = pipeline_run(message_id=follow.json()["id"])
    assert again is not None and again.experiment_arm_id == first.experiment_arm_id
    # when: an agent elsewhere rejects one of the brief arm's drafts
    pending = next(d for d in drafts[1:] if d.experiment_arm_id == brief.pk)
    rejected = client.post(
        f"/api/v1/tickets/{pending.ticket_id}/draft/reject", {"reason": "too curt"},
        format="json",
    )  # fmt: skip
    assert rejected.status_code == 200, rejected.content
    # then: the API reports each arm's drafts and outcomes as stored, with intervals
    report = client.get(f"/api/v1/experiments/{experiment.pk}").json()
    by_name = {arm["name"]: arm for arm in report["arms"]}
    for arm in (control, brief):
        mine = Draft.objects.filter(experiment_arm=arm, generation=1)
        figures = by_name[arm.name]
        assert figures["drafts"] == mine.count()
        auto = figures["shares"]["auto_sent"]
        assert auto["successes"] == mine.filter(status="auto_sent").count()
        assert auto["of"] == mine.count() and auto["low"] <= auto["share"] <= auto["high"]
    assert by_name["brief"]["shares"]["rejected"]["successes"] == 1
    assert by_name["control"]["shares"]["rejected"]["successes"] == 0
    assert report["provisional"] and report["verdict"] is None
    assert report["horizon_per_arm"] == experiment.horizon_per_arm > 48
    assert report["comparisons"][0]["arm"] == "brief"
    # the draft says which arm wrote it
    detail = client.get(f"/api/v1/tickets/{first.ticket_id}").json()
    assert detail["draft"]["experiment"]["name"] == "brief-prompt"
    # and: promoting before the horizon needs a reason, then goes through the gate
    with pytest.raises(CommandError, match="no winner"):
        call_command("experiment", "promote", "brief-prompt")
    call_command(
        "experiment", "promote", "brief-prompt", "--arm", "brief", "--override-reason",
        "the shorter prompt reads better to the team",
    )  # fmt: skip
    assert PromptTemplate.objects.get(is_active=True).pk == v2.pk
    assert GateDecision.objects.filter(kind="prompt", version=v2.version).exists()
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.PROMOTED and experiment.winner_id == brief.pk
    # no experiment runs now: drafts carry no arm
    later = _post(client, 1, start=100)
    assert Draft.objects.get(ticket_id=later[0]).experiment_arm_id is None


def test_at_the_horizon_the_verdict_names_the_winner_which_is_promoted(
    copilot_ready, api_key_client
):
    client = api_key_client()
    # given: the control never auto-sends, the other arm sends at a low threshold
    experiment = experiment_start(
        name="threshold",
        arms=[
            ArmSpec("strict", auto_send_threshold=1.0),
            ArmSpec("lenient", auto_send_threshold=0.2),
        ],
        primary_metric="auto_sent",
        baseline_rate=0.5,
        minimum_effect=0.45,
    )
    horizon = experiment.horizon_per_arm
    assert 10 <= horizon <= 20
    _post(client, horizon)
    assert experiments_close_due() == []  # at most one arm can have reached it
    # top up until both arms reached it
    start = horizon
    while (
        min(
            Draft.objects.filter(experiment_arm__name=name, generation=1).count()
            for name in ("strict", "lenient")
        )
        < horizon
    ):
        _post(client, 4, start=start)
        start += 4
    assert experiments_close_due() == ["threshold"]
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FINISHED
    assert experiment.winner.name == "lenient"
    report = client.get(f"/api/v1/experiments/{experiment.name}").json()
    assert report["verdict"]["winner"] == "lenient" and not report["provisional"]
    comparison = report["comparisons"][0]
    assert comparison["verdict"] == "better" and comparison["low"] > 0
    # when: the winner is promoted in one action
    call_command("experiment", "promote", "threshold")
    assert CopilotPolicy.objects.get().auto_send_threshold == 0.2
    with pytest.raises(CommandError, match="promoted already"):
        call_command("experiment", "promote", "threshold")


def test_an_arm_whose_prompt_is_deleted_stops_and_the_others_go_on(copilot_ready, api_key_client):
    client = api_key_client()
    versions = [
        prompt_template_publish(body=body, activate=False).version
        for body in ("Prompt B.", "Prompt C.")
    ]
    experiment = experiment_start(
        name="three",
        arms=[
            ArmSpec("control"),
            ArmSpec("b", prompt_version=versions[0]),
            ArmSpec("c", prompt_version=versions[1]),
        ],
        baseline_rate=0.5,
        minimum_effect=0.1,
    )
    with pytest.raises(ConflictError, match="is running"):
        experiment_start(name="four", arms=[ArmSpec("x"), ArmSpec("y", auto_send_threshold=0.9)],
                         baseline_rate=0.5, minimum_effect=0.1)  # fmt: skip
    # when: arm c's prompt version is deleted before it drafted anything
    PromptTemplate.objects.filter(version=versions[1]).delete()
    ids = _post(client, 16, start=10)
    # then: arm c is stopped with the reason, the others share the tickets
    c = ExperimentArm.objects.get(experiment=experiment, name="c")
    assert c.stopped_at is not None and f"version {versions[1]} was deleted" in c.stopped_reason
    arms = set(
        Draft.objects.filter(ticket_id__in=ids).values_list("experiment_arm__name", flat=True)
    )
    assert arms == {"control", "b"}
    assert Experiment.objects.get(pk=experiment.pk).status == ExperimentStatus.RUNNING
    report = client.get("/api/v1/experiments/three").json()
    assert {a["name"]: a["stopped"] for a in report["arms"]}["c"].startswith("its prompt")
    # when: b's goes too, fewer than two arms are left: the experiment stops, drafts go on
    Draft.objects.filter(prompt__version=versions[0]).update(prompt=None)
    PromptTemplate.objects.filter(version=versions[0]).delete()
    more = _post(client, 1, start=40)
    assert Draft.objects.get(ticket_id=more[0]).experiment_arm_id is None
    assert Experiment.objects.get(pk=experiment.pk).status == ExperimentStatus.STOPPED


def test_bad_experiments_are_refused_with_a_reason(copilot_ready, api_key_client):
    with pytest.raises(CommandError, match="not configured"):
        call_command("experiment", "start", "x", "--arm", "a", "--arm", "b:model=gpt-9")
    with pytest.raises(CommandError, match="at least two arms"):
        call_command("experiment", "start", "x", "--arm", "a")
    with pytest.raises(CommandError, match="no draft prompt version 99"):
        call_command("experiment", "start", "x", "--arm", "a", "--arm", "b:prompt=99")
    with pytest.raises(CommandError, match="is not one of"):
        call_command("experiment", "start", "x", "--arm", "a", "--arm", "b:colour=red")
    with pytest.raises(CommandError, match="same things"):
        call_command("experiment", "start", "x", "--arm", "a", "--arm", "b")
    assert not Experiment.objects.exists()
    missing = api_key_client().get("/api/v1/experiments/nope")
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]


def test_admins_start_watch_and_stop_an_experiment(copilot_ready, admin_client, api_key_client):
    page = admin_client.get("/admin/copilot/experiment/add/")
    assert page.status_code == 200 and b"control first" in page.content
    bad = admin_client.post(
        "/admin/copilot/experiment/add/",
        {"name": "t", "arms": "only-one", "primary_metric": "accepted", "baseline_rate": 0.4,
         "minimum_effect": 0.05, "alpha": 0.05, "power": 0.8},
    )  # fmt: skip
    assert bad.status_code == 200 and b"at least two arms" in bad.content
    started = admin_client.post(
        "/admin/copilot/experiment/add/",
        {"name": "t", "arms": "control\nstrict:threshold=0.99", "primary_metric": "accepted",
         "baseline_rate": 0.4, "minimum_effect": 0.05, "alpha": 0.05, "power": 0.8},
    )  # fmt: skip
    experiment = Experiment.objects.get(name="t")
    assert started.status_code == 302 and experiment.created_by == "admin"
    _post(api_key_client(), 4)
    change = admin_client.get(f"/admin/copilot/experiment/{experiment.pk}/change/")
    assert change.status_code == 200 and b"Provisional" in change.content
    assert b"strict" in change.content and b"auto-send at 0.99" in change.content
    admin_client.post(
        "/admin/copilot/experiment/",
        {"action": "stop", "_selected_action": [experiment.pk]},
    )
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.STOPPED and "admin" in experiment.end_reason
