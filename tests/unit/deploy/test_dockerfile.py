"""deploy/Dockerfile: linted, multi-stage, unprivileged, and what it installs is what the services import."""

from __future__ import annotations

import ast
import functools
import http.server
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .code_contract import DEPLOY, REPO, SERVICES

_DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined as the builder joins them."""
    text = re.sub(r"\\\n", "", _DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in arguments.split())
    return env


def _extras() -> list[str]:
    (default,) = [args.split("=", 1)[1] for keyword, args in _instructions() if args.startswith("EXTRAS=")]
    return default.split(",")


def _python_snippet(run: str) -> str:
    """The code of the `python -c "..."` in a RUN instruction, as the shell hands it to Python."""
    found = re.search(r'python -c "((?:[^"\\]|\\.)*)"', run)
    assert found, run
    return found[1].replace('\\"', '"')


def test_hadolint_finds_nothing_to_fix() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(_DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_in_one_stage_and_runs_unprivileged_in_another() -> None:
    build, runtime = _stages()
    assert build[0][1].endswith(" AS build") and runtime[0][1].endswith(" AS runtime")
    assert build[0][1].split()[0] == runtime[0][1].split()[0]  # the same Python
    # The runtime stage holds the installed packages only: no sources, no pip install, no compiler.
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/tenderwatch /opt/tenderwatch"]
    assert not any("pip install" in args or "apt-get" in args for keyword, args in runtime if keyword == "RUN")
    (user,) = [args for keyword, args in runtime if keyword == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert uid == gid == 10001  # numeric, so Kubernetes can check runAsNonRoot; the same in deploy/k8s
    (useradd,) = [args for keyword, args in runtime if keyword == "RUN"]
    assert f"--uid {uid}" in useradd and f"--gid {gid}" in useradd
    env = _env(runtime)
    assert env["HTTP_HOST"] == "0.0.0.0" and env["LOG_FORMAT"] == "json"
    assert [args for keyword, args in runtime if keyword == "EXPOSE"] == [env["HTTP_PORT"]]
    (command,) = [json.loads(args) for keyword, args in runtime if keyword == "CMD"]
    assert command[:2] == ["python", "-m"] and command[2].removeprefix("services.") in SERVICES


def test_every_deployment_uses_the_port_of_the_image() -> None:
    port = _env(_stages()[-1])["HTTP_PORT"]
    settings_env = (DEPLOY / "k8s" / "settings.env").read_text(encoding="utf-8")
    assert f"\nHTTP_PORT={port}\n" in settings_env
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert compose["x-service-env"]["HTTP_PORT"] == port


class _HealthEndpoints(http.server.BaseHTTPRequestHandler):
    """/health answers 200 and /ready 503, as a service that is alive but not ready yet."""

    def do_GET(self) -> None:
        self.send_response({"/health": 200, "/ready": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthEndpoints)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join(timeout=10)


def test_the_health_checks_run_with_python_and_tell_alive_from_ready(health_server: int) -> None:
    """The image's check asks /health; compose's asks /ready. Both only need python (no curl in the image)."""
    (healthcheck,) = [args for keyword, args in _stages()[-1] if keyword == "HEALTHCHECK"]
    image_check = json.loads(healthcheck.split(" CMD ", 1)[1])
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    compose_check = compose["x-service"]["healthcheck"]["test"][1:]  # after CMD
    for argv, healthy in ((image_check, True), (compose_check, False)):
        assert argv[0] == "python"
        env = {"PATH": os.environ["PATH"], "HTTP_PORT": str(health_server)}
        result = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
        assert (result.returncode == 0) is healthy, (argv, result.stderr)


def test_the_image_installs_the_extra_of_every_service() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert sorted(_extras()) == sorted(SERVICES)
    assert set(_extras()) <= set(project["optional-dependencies"])


def test_the_requirements_step_lists_the_base_and_extra_dependencies(tmp_path: Path) -> None:
    """Run the build stage's requirements one-liner on the project's pyproject.toml."""
    (run,) = [args for keyword, args in _stages()[0] if keyword == "RUN" and "requirements.txt" in args]
    snippet = _python_snippet(run)
    (tmp_path / "pyproject.toml").write_bytes((REPO / "pyproject.toml").read_bytes())
    env = {"PATH": os.environ["PATH"], "EXTRAS": ",".join(_extras())}
    listed = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = project["dependencies"] + [r for e in _extras() for r in project["optional-dependencies"][e]]
    assert listed == expected
    assert all(re.search(r"==[0-9]", requirement) for requirement in listed)  # exact pins only


def test_the_build_fails_when_a_service_cannot_import() -> None:
    """The build stage's last step imports each installed service; run it here on the same code."""
    (run,) = [args for keyword, args in _stages()[0] if keyword == "RUN" and "import_module" in args]
    env = {**os.environ, "EXTRAS": ",".join(_extras())}
    subprocess.run([sys.executable, "-c", _python_snippet(run)], cwd=REPO, env=env, check=True, timeout=120)
    env["EXTRAS"] = "api,no-such-service"
    failed = subprocess.run([sys.executable, "-c", _python_snippet(run)], cwd=REPO, env=env, capture_output=True)
    assert failed.returncode != 0 and b"services.no-such-service" in failed.stderr


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports_at_load(module: str) -> set[str]:
    """Modules imported when `module` loads: its top-level imports, not those inside functions."""
    path = _module_file(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: `from . import x` is the package itself, each further dot its parent
                    parents = package.split(".")
                    base = ".".join([*parents[: len(parents) - node.level + 1], base]).strip(".")
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}"))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def _third_party_imported_by(entries: list[str]) -> set[str]:
    """Top-level names of the third-party packages these modules import as they load, transitively."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = list(entries)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts)) if _module_file(".".join(parts[:i]))]
        for imported in _imports_at_load(module):
            top = imported.split(".")[0]
            if top in ("services", "schemas"):
                pending.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return third_party


def _distributions_installed_by(requirements: list[str]) -> set[str]:
    """The distributions pip installs for these requirements: them and what they require, transitively."""
    installed: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in installed:
            continue
        installed |= {key, name}
        for text in importlib.metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            extras = ["", *requirement.extras]
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return installed


@functools.cache
def _providers() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions that provide it."""
    return dict(importlib.metadata.packages_distributions())


def _not_installed(imported: set[str], installed: set[str]) -> set[str]:
    """The imported top-level names that no installed distribution provides."""
    providers = _providers()
    return {top for top in imported if not {canonicalize_name(d) for d in providers.get(top, [])} & installed}


def test_the_image_installs_every_package_the_services_and_the_command_import() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [r for e in _extras() for r in project["optional-dependencies"][e]]
    installed = _distributions_installed_by(requirements)
    # What `python -m services.<name>` loads, and `tenderwatch` (topics, dlq replay) run in a container.
    entries = [f"services.{service}.__main__" for service in SERVICES] + ["services.platform.cli"]
    imported = _third_party_imported_by(entries)
    assert _not_installed(imported, installed) == set(), "imported by the services, installed by no dependency"
    assert {"faststream", "aiokafka", "asyncpg", "fastapi", "lxml", "pyroaring", "aiosmtplib"} <= imported


@pytest.mark.parametrize("service", SERVICES)
def test_an_image_of_one_service_installs_what_that_service_imports(service: str) -> None:
    """`--build-arg EXTRAS=<service>`: the base dependencies and the service's extra are enough to start it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    installed = _distributions_installed_by(project["dependencies"] + project["optional-dependencies"][service])
    assert _not_installed(_third_party_imported_by([f"services.{service}.__main__"]), installed) == set()
