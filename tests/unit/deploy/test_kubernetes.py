"""deploy/k8s against the Kubernetes schemas, KEDA's ScaledObject specification, and the code."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .code_contract import (
    DEPLOY,
    SECRET_PLACEHOLDERS,
    SERVICES,
    SETTINGS_ENV_NAMES,
    consumptions,
    services_with_database,
    settings_from,
)

K8S = DEPLOY / "k8s"
# An older Kubernetes release still widely run, and the newest the schemas know.
_KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
_QUANTITY = re.compile(r"^(?P<number>[0-9.]+)(?P<unit>m|Ki|Mi|Gi)?$")
_UNITS = {None: 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def _kustomization() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return document


@functools.cache
def _parsed_objects() -> tuple[dict[str, Any], ...]:
    found: list[dict[str, Any]] = []
    for resource in _kustomization()["resources"]:
        found += [doc for doc in yaml.safe_load_all((K8S / resource).read_text(encoding="utf-8")) if doc]
    return tuple(found)


def _objects() -> list[dict[str, Any]]:
    """Every object of the resources kustomization.yaml lists, as written (before kustomize); a copy to change."""
    return copy.deepcopy(list(_parsed_objects()))


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in _objects() if obj["kind"] == kind}


def _env_file(name: str) -> dict[str, str]:
    lines = (K8S / name).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _config_maps() -> dict[str, dict[str, str]]:
    """The ConfigMaps kustomize generates, by name, with their data."""
    maps: dict[str, dict[str, str]] = {}
    for generator in _kustomization()["configMapGenerator"]:
        maps[generator["name"]] = {}
        for env_file in generator["envs"]:
            maps[generator["name"]] |= _env_file(env_file)
    return maps


def _quantity(text: str | int) -> float:
    found = _QUANTITY.match(str(text))
    assert found, f"not a quantity this test reads: {text}"
    return float(found["number"]) * _UNITS[found["unit"]]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


def _container_env(deployment: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the pod would see it, secrets replaced by placeholders."""
    maps = _config_maps()
    env: dict[str, str] = {}
    container = _container(deployment)
    for source in container.get("envFrom", []):
        env |= maps[source["configMapRef"]["name"]]
    for variable in container.get("env", []):
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "tenderwatch-secrets" and reference["key"] == variable["name"]
        env[variable["name"]] = SECRET_PLACEHOLDERS[variable["name"]]
    return env


def test_kustomization_lists_every_manifest_and_every_file_it_lists_exists() -> None:
    kustomization = _kustomization()
    listed = set(kustomization["resources"])
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == manifests
    generated = {env for generator in kustomization["configMapGenerator"] for env in generator["envs"]}
    assert generated == {path.name for path in K8S.glob("*.env")}
    assert kustomization["namespace"] == "tenderwatch"
    assert [image["name"] for image in kustomization["images"]] == ["tenderwatch"]
    assert {_container(d)["image"] for d in _of_kind("Deployment").values()} == {"tenderwatch"}


@pytest.mark.parametrize("version", _KUBERNETES_VERSIONS)
def test_built_in_objects_follow_the_kubernetes_schemas(version: str) -> None:
    checked: Counter[str] = Counter()
    for obj in _objects():
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: see the next test
        kubernetes_validate.validate(obj, version, strict=True)
        checked[obj["kind"]] += 1
    assert checked == {
        "Namespace": 1,
        "Deployment": len(SERVICES),
        "Service": len(SERVICES),
        "PodDisruptionBudget": len(SERVICES),
        "HorizontalPodAutoscaler": 1,
    }


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = _of_kind("Deployment")["matcher"]
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="runAsNonroot"):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


@pytest.fixture(scope="module")
def keda_schema() -> jsonschema.Draft202012Validator:
    schema = json.loads((Path(__file__).parent / "keda-scaledobject.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_scaled_objects_follow_the_keda_specification(keda_schema: jsonschema.Draft202012Validator) -> None:
    scaled = _of_kind("ScaledObject")
    assert scaled
    for name, obj in scaled.items():
        assert [error.message for error in keda_schema.iter_errors(obj)] == [], name
        spec = obj["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name


def test_the_keda_schema_catches_mistakes(keda_schema: jsonschema.Draft202012Validator) -> None:
    scaled = _of_kind("ScaledObject")["matcher"]
    scaled["spec"]["maxReplicas"] = 6  # the HPA's name, not KEDA's
    trigger = scaled["spec"]["triggers"][0]
    trigger["metadata"]["lagThreshold"] = 500  # KEDA's metadata values are strings
    trigger["metadata"]["consumergroup"] = trigger["metadata"].pop("consumerGroup")
    found = " | ".join(error.message for error in keda_schema.iter_errors(scaled))
    assert "'maxReplicas' was unexpected" in found
    assert "500 is not of type 'string'" in found
    assert "'consumergroup' was unexpected" in found


def test_each_consumer_service_scales_on_the_lag_of_its_consumer_group() -> None:
    scaled = _of_kind("ScaledObject")
    partitions = int(_config_maps()["tenderwatch-settings"]["KAFKA_TOPIC_PARTITIONS"])
    bootstrap = _config_maps()["tenderwatch-settings"]["KAFKA_BOOTSTRAP_SERVERS"]
    groups = {(c.group, c.topic.value): c.service for c in consumptions() if c.group}
    consumers = set(groups.values()) - {"api"}  # the api scales on CPU
    assert set(scaled) == consumers
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"] == {"name": name}  # a Deployment of the same name
        # More instances than partitions would sit idle.
        assert spec["maxReplicaCount"] <= partitions, name
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka", name
            metadata = trigger["metadata"]
            assert groups.get((metadata["consumerGroup"], metadata["topic"])) == name, metadata
            assert metadata["bootstrapServers"] == bootstrap, name
            assert int(metadata["lagThreshold"]) > 0
            assert metadata["offsetResetPolicy"] == "earliest"  # a new group reads from the first message
    (hpa,) = _of_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_the_kafka_triggers_read_the_services_bootstrap_servers_after_kustomize() -> None:
    (replacement,) = _kustomization()["replacements"]
    assert replacement["source"] == {
        "kind": "ConfigMap",
        "name": "tenderwatch-settings",
        "fieldPath": "data.KAFKA_BOOTSTRAP_SERVERS",
    }
    (target,) = replacement["targets"]
    assert target["select"] == {"kind": "ScaledObject"}
    assert target["fieldPaths"] == ["spec.triggers.[type=kafka].metadata.bootstrapServers"]


def test_deployments_run_unprivileged_with_probes_resources_and_metrics() -> None:
    deployments = _of_kind("Deployment")
    assert set(deployments) == set(SERVICES)
    port = int(_config_maps()["tenderwatch-settings"]["HTTP_PORT"])
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert "replicas" not in spec, f"{name}: the autoscaler owns the replica count"
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}, name
        template = spec["template"]
        assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), name
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["enableServiceLinks"] is False and pod["automountServiceAccountToken"] is False, name
        assert pod["terminationGracePeriodSeconds"] >= 35, name  # uvicorn 20 s, then the consumers 15 s
        container = _container(deployment)
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}], name
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, name
        assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}, name
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            assert 0 < _quantity(resources["requests"][resource]) <= _quantity(resources["limits"][resource]), name
        annotations = template["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, name
    # Every instance of the matcher holds every subscription: 955 MiB measured at a million.
    assert _quantity(_container(deployments["matcher"])["resources"]["limits"]["memory"]) >= 1.5 * 2**30


def test_services_and_disruption_budgets_select_their_pods() -> None:
    deployments = _of_kind("Deployment")
    services = _of_kind("Service")
    budgets = _of_kind("PodDisruptionBudget")
    assert set(services) == set(budgets) == set(deployments)
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items(), name
        assert services[name]["spec"]["ports"] == [
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
        ]
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert budgets[name]["spec"]["maxUnavailable"] == 1, name


def test_each_deployment_environment_is_accepted_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _of_kind("Service")
    for name, deployment in _of_kind("Deployment").items():
        env = _container_env(deployment)
        assert set(env) <= SETTINGS_ENV_NAMES, f"{name}: {set(env) - SETTINGS_ENV_NAMES} are not settings"
        settings = settings_from(env, monkeypatch)  # fails for a public address without UNSUBSCRIBE_SECRET
        assert ("DATABASE_URL" in env) == (name in services_with_database()), name  # only those owning a schema
        assert settings.http_host == "0.0.0.0"
        for url, target in ((settings.ingest_url, "ingest"), (settings.notifier_url, "notifier")):
            assert url == f"http://{target}:{services[target]['spec']['ports'][0]['port']}", name
    notifier = settings_from(_container_env(_of_kind("Deployment")["notifier"]), monkeypatch)
    assert notifier.public_base_url.startswith("https://") and notifier.unsubscribe_secret is not None


def test_kustomize_builds_one_namespace_with_generated_settings_and_the_image_tag(
    keda_schema: jsonschema.Draft202012Validator,
) -> None:
    kubectl = shutil.which("kubectl")
    # Not skipped: a kustomization that does not build is what this test is here to catch.
    assert kubectl is not None, "kubectl (with its built-in kustomize) is needed on PATH to build deploy/k8s"
    built = subprocess.run([kubectl, "kustomize", str(K8S)], check=True, capture_output=True, text=True, timeout=120)
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert all(o["metadata"].get("namespace") == "tenderwatch" for o in objects if o["kind"] != "Namespace")
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    tag = _kustomization()["images"][0]["newTag"]
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        container = _container(deployment)
        assert container["image"] == f"tenderwatch:{tag}"
        # Generated names carry a hash of the settings, so changing one rolls the Deployments.
        references = {source["configMapRef"]["name"] for source in container["envFrom"]}
        assert references <= config_maps and all(re.search(r"-[a-z0-9]{10}$", ref) for ref in references)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "tenderwatch"
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            assert [error.message for error in keda_schema.iter_errors(obj)] == []
        else:
            for version in _KUBERNETES_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
