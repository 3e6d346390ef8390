"""The whole platform on one machine: the stack, the five services as separate processes, local sinks.

`tenderwatch run` and the end-to-end tests use it. Services are child processes that die with this process;
`stop()` ends them in reverse order of the flow, then the stack. A service that crashes is restarted.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.embedded import EmbeddedStack
from services.runtime.processes import free_port, spawn, stop

_log = logging.getLogger(__name__)

SERVICES = ("api", "ingest", "classifier", "matcher", "notifier")
_STOP_ORDER = ("api", "ingest", "classifier", "matcher", "notifier")
_MAX_RESTARTS = 5


@dataclass
class _Child:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    restarts: int = 0


@dataclass
class Platform:
    """Start with `start()`; `url(service)` gives each service's HTTP address; end with `stop()`."""

    workdir: Path
    environment: dict[str, str] = field(default_factory=dict)
    fixed_ports: dict[str, int] = field(default_factory=dict)
    stack: EmbeddedStack | None = None
    _children: dict[str, _Child] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)

    def start(self, *, timeout: float = 120.0) -> None:
        """Start what is missing of the stack, then every service; wait until all are ready."""
        env = {**os.environ, **self.environment}
        want_kafka = not env.get("KAFKA_BOOTSTRAP_SERVERS")
        want_postgres = not env.get("DATABASE_URL")
        if want_kafka or want_postgres:
            self.stack = EmbeddedStack(self.workdir / "stack", kafka=want_kafka, postgres=want_postgres)
            self.stack.start()
            env.update(self.stack.environment())
        ports = {name: self.fixed_ports.get(name) or free_port() for name in SERVICES}
        env["INGEST_URL"] = f"http://127.0.0.1:{ports['ingest']}"
        env["NOTIFIER_URL"] = f"http://127.0.0.1:{ports['notifier']}"
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{ports['api']}")
        # Signs the one-click unsubscribe links; a fresh one per local run (links die with the run).
        env.setdefault("UNSUBSCRIBE_SECRET", secrets.token_urlsafe(32))
        self._env = env
        try:
            for name in SERVICES:
                self._children[name] = _Child(name, ports[name], self._spawn(name, ports[name]))
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, port: int) -> subprocess.Popen[bytes]:
        env = {**self._env, "HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1"}
        return spawn([sys.executable, "-m", f"services.{name}"], env=env, log=self.log_path(name))

    def log_path(self, name: str) -> Path:
        return self.workdir / "log" / f"{name}.log"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._children[name].port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment the services run with (stack addresses included)."""
        return dict(self._env)

    def wait_ready(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self._children)
        while pending:
            for name in sorted(pending):
                child = self._children[name]
                if child.process.poll() is not None:
                    raise RuntimeError(
                        f"service {name} exited with code {child.process.returncode} while starting; "
                        f"its log: {self.log_path(name)}\n{_tail(self.log_path(name))}"
                    )
                if _is_ready(self.url(name)):
                    pending.discard(name)
                    _log.info("%s is ready on %s", name, self.url(name))
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.3)

    def supervise_once(self) -> list[str]:
        """Restart services that died; returns their names. Gives up on one that keeps crashing."""
        restarted = []
        for child in self._children.values():
            code = child.process.poll()
            if code is None:
                continue
            if child.restarts >= _MAX_RESTARTS:
                raise RuntimeError(
                    f"service {child.name} crashed {child.restarts + 1} times; see {self.log_path(child.name)}"
                )
            child.restarts += 1
            _log.warning("service %s exited with code %s; restarting (%d)", child.name, code, child.restarts)
            child.process = self._spawn(child.name, child.port)
            restarted.append(child.name)
        return restarted

    def stop(self) -> None:
        for name in _STOP_ORDER:
            child = self._children.pop(name, None)
            if child is not None:
                stop(child.process, timeout=30)
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


def _is_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/ready", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200 and json.loads(response.read()).get("status") == "ready")
    except (OSError, ValueError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
