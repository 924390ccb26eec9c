"""The cluster manifests in deploy/k8s validate against Kubernetes' own schemas (via
kubernetes-validate, strict: an unknown or misspelt field fails), the KEDA objects against
the part of KEDA's CRD they use, and they mean the right things: probes on the web's real
endpoints, one beat, workers that run the queues Deskpilot publishes to."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from apps.core.workers import QUEUES

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"

# The fields of keda.sh/v1alpha1 ScaledObject and TriggerAuthentication these manifests use,
# as KEDA's CRDs declare them (types, required keys, no others).
_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
        },
    },
}
KEDA_SCHEMAS = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
                },
            }
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    }
                },
            }
        },
    },
}


def _documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _all() -> list[tuple[str, dict]]:
    return [
        (path.name, document)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in _documents(path)
    ]


def _by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in _all() if doc["kind"] == kind}


@pytest.mark.parametrize(("name", "document"), _all(), ids=lambda value: str(value)[:40])
def test_every_manifest_validates_against_its_schema(name, document):
    if document["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(document, KEDA_SCHEMAS[document["kind"]])
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_would_fail_the_validation():
    # given: the web Deployment with one field misspelt
    web = _by_kind("Deployment")["deskpilot-web"]
    broken = {**web, "spec": {**web["spec"], "replica": 2}}
    # then
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_files_that_exist_and_every_pod_uses_the_image():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists(), resource
    image = kustomization["images"][0]["name"]
    for name, deployment in _by_kind("Deployment").items():
        containers = deployment["spec"]["template"]["spec"]["containers"]
        assert [container["image"] for container in containers] == [image], name


def test_probes_mean_the_right_thing():
    web = _by_kind("Deployment")["deskpilot-web"]["spec"]["template"]["spec"]["containers"][0]
    # readiness is /readyz (ready while the database answers), liveness /healthz
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # /readyz answers within 2.5 s whatever hangs: the probe waits longer than that
    assert web["readinessProbe"]["timeoutSeconds"] > 2.5


def test_one_beat_never_two_and_workers_cover_every_queue():
    deployments = _by_kind("Deployment")
    beat = deployments["deskpilot-beat"]["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"
    assert "deskpilot-beat" not in _by_kind("HorizontalPodAutoscaler")
    consumed: set[str] = set()
    for name in ("deskpilot-pipeline", "deskpilot-worker"):
        arguments = deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"]
        consumed |= set(arguments[arguments.index("-Q") + 1].split(","))
    assert consumed == set(QUEUES)
    pipeline = deployments["deskpilot-pipeline"]["spec"]["template"]["spec"]["containers"][0]
    assert "threads" in pipeline["args"]


def test_queue_scalers_read_the_celery_queues_and_target_existing_deployments():
    deployments = _by_kind("Deployment")
    for name, scaled in _by_kind("ScaledObject").items():
        assert scaled["spec"]["scaleTargetRef"]["name"] in deployments, name
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "redis"
            assert trigger["metadata"]["listName"] in QUEUES
            assert trigger["authenticationRef"]["name"] in _by_kind("TriggerAuthentication")


def test_every_deployment_has_requests_and_a_memory_limit_and_a_disruption_budget():
    budgets = {
        budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for budget in _by_kind("PodDisruptionBudget").values()
    }
    for name, deployment in _by_kind("Deployment").items():
        resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        if name != "deskpilot-beat":  # one beat: a budget would block every drain
            assert name in budgets, name
