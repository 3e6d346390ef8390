"""deploy/compose.yaml (and its three-broker override) against the Compose specification and the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas import Topic

from .code_contract import (
    DEPLOY,
    SERVICES,
    SETTINGS_ENV_NAMES,
    services_with_database,
    settings_from,
)

# The values deploy/.env would hold: the secrets compose refuses to start without.
_DOT_ENV = {
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "UNSUBSCRIBE_SECRET": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=",
    "OPERATOR_TOKEN": "fedcba9876543210",
}
_PUBLISHING = {"api", "mailpit", "prometheus", "grafana"}  # the services with a host port, none of them scaled
_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.DOTALL)


class _MissingVariableError(Exception):
    pass


def _substitute(text: str, env: dict[str, str]) -> str:
    """Compose interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`..."""

    def replace(found: re.Match[str]) -> str:
        if found["escaped"]:
            return "$"
        if found["named"]:
            return env.get(found["named"], "")
        parts = _BRACED.match(found["braced"])
        assert parts, f"not a compose variable: ${{{found['braced']}}}"
        name, op, arg = parts["name"], parts["op"], parts["arg"]
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return _substitute(arg, env) if unset else str(value)
        if op in (":?", "?"):
            if unset:
                raise _MissingVariableError(f"{name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset else _substitute(arg, env)
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, env) for value in node]
    return node


def _merged(base: Any, override: Any) -> Any:
    """`docker compose -f base -f override`: mappings merge key by key, anything else is replaced."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(base[key], value) if key in base else value
    return merged


def _raw(*names: str) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name in names:
        document = _merged(document, yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8")))
    return document


def _project(*names: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The project compose would run: files merged, variables interpolated (YAML anchors and merges resolved)."""
    result: dict[str, Any] = _interpolated(_raw(*names), _DOT_ENV if env is None else env)
    return result


_LAYOUTS = [("compose.yaml",), ("compose.yaml", "compose.kafka-3.yaml")]


def _tenderwatch_services(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run a tenderwatch service (`python -m services.<name>`), by compose service name."""
    return {
        name: service
        for name, service in project["services"].items()
        if service.get("command", [])[:3] == ["python", "-m", f"services.{name}"]
    }


def _kafka_brokers(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in project["services"].items()
        if "KAFKA_PROCESS_ROLES" in service.get("environment", {})
    }


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, as vendored by check-jsonschema."""
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))
    return schema


@pytest.mark.parametrize("files", _LAYOUTS, ids=["one-broker", "three-brokers"])
def test_the_compose_files_follow_the_compose_specification(
    files: tuple[str, ...], compose_schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_project(*files))]
    assert errors == []


def test_the_schema_catches_a_mistake(compose_schema: dict[str, Any]) -> None:
    project = _project("compose.yaml")
    project["services"]["matcher"]["restart_policy"] = "always"  # a key compose does not know
    project["services"]["classifier"]["depends_on"]["topics"]["condition"] = "service_finished"
    found = " | ".join(e.message for e in jsonschema.Draft202012Validator(compose_schema).iter_errors(project))
    assert "'restart_policy' was unexpected" in found
    assert "{'topics': {'condition': 'service_finished'}} is not valid" in found


def test_compose_refuses_to_start_without_the_secrets_listed_in_env_example() -> None:
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    required = {line.split("=")[0] for line in example.splitlines() if re.match(r"^[A-Z_]+=$", line)}
    assert required == set(_DOT_ENV)
    for name in required:
        with pytest.raises(_MissingVariableError, match=name):
            _project("compose.yaml", env={key: value for key, value in _DOT_ENV.items() if key != name})
    # What the example leaves commented out is optional: every `${NAME...}` it mentions has a default.
    optional = set(re.findall(r"^# ([A-Z_]+)=", example, re.MULTILINE))
    assert optional <= set(re.findall(r"\$\{([A-Z_]+):-", (DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


@pytest.mark.parametrize("files", _LAYOUTS, ids=["one-broker", "three-brokers"])
def test_every_service_can_scale_and_has_a_health_check(files: tuple[str, ...]) -> None:
    project = _project(*files)
    assert set(_tenderwatch_services(project)) == set(SERVICES)
    for name, service in project["services"].items():
        assert "container_name" not in service, name  # `--scale` names the containers itself
        assert "hostname" not in service, name
        if name in _PUBLISHING:
            # Published on the loopback address only, never on every interface of the host.
            assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name
        else:
            assert "ports" not in service, f"{name} publishes a host port: a second instance could not start"
        if service.get("restart") == "no":
            continue  # a one-shot job, which others wait for to complete
        assert service["healthcheck"]["test"], f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert project["services"][dependency]["healthcheck"]["test"], dependency
            elif condition["condition"] == "service_completed_successfully":
                assert project["services"][dependency]["restart"] == "no", dependency
    for name, service in _tenderwatch_services(project).items():
        check = " ".join(service["healthcheck"]["test"])
        assert "/ready" in check and "HTTP_PORT" in check, name  # ready: broker, database and consumers
        assert "topics" in service["depends_on"], f"{name} may start before the topics exist"
        assert int(service["stop_grace_period"].removesuffix("s")) >= 35, name  # drain time before SIGKILL


@pytest.mark.parametrize("files", _LAYOUTS, ids=["one-broker", "three-brokers"])
def test_each_service_environment_is_accepted_by_the_settings(
    files: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(*files)
    services = _tenderwatch_services(project)
    brokers = _kafka_brokers(project)
    for name, service in services.items():
        env = {key: str(value) for key, value in service["environment"].items()}
        assert set(env) <= SETTINGS_ENV_NAMES, f"{name}: {set(env) - SETTINGS_ENV_NAMES} are not settings"
        settings = settings_from(env, monkeypatch)
        assert ("DATABASE_URL" in env) == (name in services_with_database()), name  # only those owning a schema
        assert sorted(settings.kafka_bootstrap_servers.split(",")) == sorted(f"{b}:9092" for b in brokers), name
        assert settings.kafka_replication_factor <= len(brokers), name
        assert settings.http_host == "0.0.0.0" and settings.http_port == 8080, name
        for url, target in ((settings.ingest_url, "ingest"), (settings.notifier_url, "notifier")):
            if url != type(settings).model_fields[f"{target}_url"].default:
                assert url == f"http://{target}:{services[target]['environment']['HTTP_PORT']}", name
    notifier = settings_from({k: str(v) for k, v in services["notifier"]["environment"].items()}, monkeypatch)
    assert (notifier.smtp_host, notifier.smtp_port) == ("mailpit", 1025)
    assert notifier.unsubscribe_secret is not None  # emails carry signed unsubscribe links


def test_three_brokers_form_one_quorum_and_replicate_every_topic_three_times() -> None:
    project = _project("compose.yaml", "compose.kafka-3.yaml")
    brokers = _kafka_brokers(project)
    assert len(brokers) == 3
    voters = {f"{broker['environment']['KAFKA_NODE_ID']}@{name}:9093" for name, broker in brokers.items()}
    for name, broker in brokers.items():
        env = broker["environment"]
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2 and int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert broker["volumes"] and broker["healthcheck"]["test"], name
    assert len({b["environment"]["CLUSTER_ID"] for b in brokers.values()}) == 1
    assert len({b["environment"]["KAFKA_NODE_ID"] for b in brokers.values()}) == 3
    topics = project["services"]["topics"]
    assert int(topics["environment"]["KAFKA_REPLICATION_FACTOR"]) == 3
    assert set(topics["depends_on"]) == set(brokers)


@pytest.mark.parametrize("files", _LAYOUTS, ids=["one-broker", "three-brokers"])
def test_the_topics_job_creates_every_topic_and_its_dead_letter_topic(files: tuple[str, ...], tmp_path: Path) -> None:
    """Run the job's script with a stand-in for kafka-topics.sh that records each call."""
    topics = _project(*files)["services"]["topics"]
    assert topics["entrypoint"][0] == "/bin/bash"
    calls = tmp_path / "calls"
    recorder = tmp_path / "kafka-topics.sh"
    # One line per call, its arguments separated by the ASCII unit separator.
    recorder.write_text(f"#!/bin/bash\n{{ printf '%s\\x1f' \"$@\"; echo; }} >> '{calls}'\n", encoding="utf-8")
    recorder.chmod(0o755)
    script = topics["command"][0].replace("/opt/kafka/bin/kafka-topics.sh", str(recorder))
    env = {key: str(value) for key, value in topics["environment"].items()}
    subprocess.run([*topics["entrypoint"], script], check=True, env={"PATH": os.environ["PATH"], **env}, timeout=60)

    created: dict[str, list[str]] = {}
    for line in calls.read_text(encoding="utf-8").splitlines():
        argv = line.split("\x1f")[:-1]
        if "--create" not in argv:
            continue
        after = {flag: argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag.startswith("--")}
        assert "--if-not-exists" in argv  # the job can run again
        assert after["--bootstrap-server"] == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert after["--partitions"] == env["KAFKA_TOPIC_PARTITIONS"]
        assert after["--replication-factor"] == env["KAFKA_REPLICATION_FACTOR"]
        created[after["--topic"]] = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--config"]
    assert set(created) == {topic.value for topic in Topic} | {topic.dlq for topic in Topic}
    compacted = {name for name, configs in created.items() if "cleanup.policy=compact" in configs}
    assert compacted == {topic.value for topic in Topic if topic.compacted}
    assert compacted == {"subscriptions.changes", "webhook-endpoints.changes"}


def test_topics_get_the_partitions_and_replication_the_services_use() -> None:
    project = _project("compose.yaml", env={**_DOT_ENV, "KAFKA_TOPIC_PARTITIONS": "9"})
    topics = project["services"]["topics"]["environment"]
    assert topics["KAFKA_TOPIC_PARTITIONS"] == "9"
    for name, service in _tenderwatch_services(project).items():
        env = service["environment"]
        assert (env["KAFKA_TOPIC_PARTITIONS"], env["KAFKA_REPLICATION_FACTOR"]) == (
            topics["KAFKA_TOPIC_PARTITIONS"],
            topics["KAFKA_REPLICATION_FACTOR"],
        ), name
    # By default, enough partitions for `--scale matcher=3` (and more) to give every instance a share.
    assert int(_project("compose.yaml")["services"]["topics"]["environment"]["KAFKA_TOPIC_PARTITIONS"]) >= 3


def test_prometheus_scrapes_every_service_and_grafana_gets_its_files() -> None:
    project = _project("compose.yaml")
    services = _tenderwatch_services(project)
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = scrape["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    assert sorted(discovery["names"]) == sorted(services)
    assert {str(discovery["port"])} == {s["environment"]["HTTP_PORT"] for s in services.values()}
    assert job["metrics_path"] == "/metrics"
    for name in ("prometheus", "grafana"):
        service = project["services"][name]
        assert service["profiles"] == ["monitoring"]
        for volume in service["volumes"]:
            assert (DEPLOY / volume.split(":")[0]).exists(), volume
