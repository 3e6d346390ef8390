"""The whole platform on one machine: the stack, the five services as separate processes, local sinks.

`tenderwatch run` and the end-to-end tests use it. Services are child processes that die with this process;
`stop()` ends them in reverse order of the flow, then the stack. A service that crashes is restarted.

Each service runs as one or more instances (`instances={"matcher": 3}`), each its own process, HTTP port and
log file: the first is named after the service (`matcher`, `log/matcher.log`), the next ones `matcher-2`,
`matcher-3`... Instances of a service share its topics' partitions in one consumer group, so while the platform
runs instances can be added (`add_instances`), stopped gracefully (`remove_instances`), or killed and restarted
(`kill_instance`) to see the work move between them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
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
# The API reaches ingest and the notifier at one address each: their first instance's.
_ADDRESSED = ("api", "ingest", "notifier")
# The embedded broker cannot add partitions to a topic later, so its topics get two partitions per instance of the
# most scaled service (at least the default 3): room to add instances while the platform runs.
_PARTITIONS_PER_INSTANCE = 2
_DEFAULT_PARTITIONS = 3
_STOP_SECONDS = 30.0


@dataclass
class _Instance:
    name: str
    service: str
    port: int
    process: subprocess.Popen[bytes]
    restarts: int = 0


@dataclass
class Platform:
    """Start with `start()`; `url(service)` gives each service's HTTP address; end with `stop()`."""

    workdir: Path
    environment: dict[str, str] = field(default_factory=dict)
    fixed_ports: dict[str, int] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)  # service -> instances at start; 1 when absent
    stack: EmbeddedStack | None = None
    _children: dict[str, _Instance] = field(default_factory=dict)  # by instance name, in start order
    _started: dict[str, int] = field(default_factory=dict)  # service -> instances started so far (names)
    _env: dict[str, str] = field(default_factory=dict)

    def start(self, *, timeout: float = 120.0) -> None:
        """Start what is missing of the stack, then every service's instances; wait until all are ready."""
        unknown = set(self.instances) - set(SERVICES)
        if unknown or any(count < 1 for count in self.instances.values()):
            raise ValueError(f"instances: services are {', '.join(SERVICES)}, each with 1 or more instances")
        env = {**os.environ, **self.environment}
        want_kafka = not env.get("KAFKA_BOOTSTRAP_SERVERS")
        want_postgres = not env.get("DATABASE_URL")
        if want_kafka or want_postgres:
            self.stack = EmbeddedStack(self.workdir / "stack", kafka=want_kafka, postgres=want_postgres)
            self.stack.start()
            env.update(self.stack.environment())
        if want_kafka:
            most = max(self.instances.values(), default=1)
            env.setdefault("KAFKA_TOPIC_PARTITIONS", str(max(_DEFAULT_PARTITIONS, _PARTITIONS_PER_INSTANCE * most)))
        ports = {name: self.fixed_ports.get(name) or free_port() for name in SERVICES}
        env["INGEST_URL"] = f"http://127.0.0.1:{ports['ingest']}"
        env["NOTIFIER_URL"] = f"http://127.0.0.1:{ports['notifier']}"
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{ports['api']}")
        # Signs the one-click unsubscribe links; a fresh one per local run (links die with the run).
        env.setdefault("UNSUBSCRIBE_SECRET", secrets.token_urlsafe(32))
        self._env = env
        try:
            for service in SERVICES:
                for number in range(self.instances.get(service, 1)):
                    self._add(service, ports[service] if number == 0 else free_port())
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def _add(self, service: str, port: int) -> _Instance:
        number = self._started.get(service, 0) + 1
        self._started[service] = number
        name = service if number == 1 else f"{service}-{number}"  # never reused: a log file is one instance's
        instance = _Instance(name, service, port, self._spawn(name, service, port))
        self._children[name] = instance
        return instance

    def _spawn(self, name: str, service: str, port: int) -> subprocess.Popen[bytes]:
        env = {**self._env, "HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1"}
        return spawn([sys.executable, "-m", f"services.{service}"], env=env, log=self.log_path(name))

    def log_path(self, name: str) -> Path:
        """The log file of an instance (a service's name is its first instance's)."""
        return self.workdir / "log" / f"{name}.log"

    def url(self, name: str) -> str:
        """The HTTP address of an instance, or of a service's first running instance."""
        return f"http://127.0.0.1:{self._instance(name).port}"

    def instance_names(self, service: str | None = None) -> list[str]:
        """The running instances, of one service or of all, in the order they started."""
        return [i.name for i in self._children.values() if service is None or i.service == service]

    def pid(self, name: str) -> int:
        return self._instance(name).process.pid

    @property
    def env(self) -> dict[str, str]:
        """The environment the services run with (stack addresses included)."""
        return dict(self._env)

    def add_instances(self, *services: str, timeout: float = 120.0) -> list[str]:
        """Start one more instance of each service named (named twice: two more), all at once, and wait until they
        are ready; returns their names."""
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; services are {', '.join(SERVICES)}")
        partitions = int(self._env.get("KAFKA_TOPIC_PARTITIONS") or _DEFAULT_PARTITIONS)
        names = []
        for service in services:
            if len(self.instance_names(service)) >= partitions:
                _log.warning("%s has as many instances as partitions (%d): a new one stays idle", service, partitions)
            names.append(self._add(service, free_port()).name)
        self.wait_ready(timeout=timeout, names=names)
        return names

    def remove_instances(self, *names: str, timeout: float = _STOP_SECONDS) -> dict[str, bool]:
        """Stop instances gracefully and together (SIGTERM: each finishes its message, commits, leaves its group).

        A name is an instance, or a service for its newest instance. A service keeps at least one instance, and the
        first instance of the api, ingest and the notifier stays: the other services call its address. Returns,
        for each, whether it stopped by itself within `timeout` (else it was killed).
        """
        leaving: list[_Instance] = []
        for name in names:
            instance = self._children[name] if name in self._children else self._newest(name)
            if len(self.instance_names(instance.service)) == 1:
                raise ValueError(f"{instance.name} is the last instance of {instance.service}")
            if instance.service in _ADDRESSED and instance.name == instance.service:
                raise ValueError(f"{instance.name} is the instance other services call: remove another one")
            del self._children[instance.name]
            instance.process.send_signal(signal.SIGTERM)
            leaving.append(instance)
        stopped = {}
        for instance in leaving:
            code = stop(instance.process, timeout=timeout)
            _log.info("stopped %s (exit code %s)", instance.name, code)
            # The server re-raises the signal it stopped on once it has shut down, hence -SIGTERM.
            stopped[instance.name] = code in (0, -signal.SIGTERM)
        return stopped

    def kill_instance(self, name: str, *, restart: bool = True) -> None:
        """SIGKILL one instance, as a crash would, and start it again on its port unless `restart` is false.

        Does not wait for the new process to be ready (`wait_ready` does), and does not count as a crash.
        """
        instance = self._instance(name)
        instance.process.send_signal(signal.SIGKILL)
        instance.process.wait(10)
        _log.info("killed %s (pid %d)", instance.name, instance.process.pid)
        if restart:
            instance.process = self._spawn(instance.name, instance.service, instance.port)
        else:
            del self._children[instance.name]

    def _instance(self, name: str) -> _Instance:
        found = self._children.get(name) or next((i for i in self._children.values() if i.service == name), None)
        if found is None:
            raise KeyError(f"no running instance named {name!r}; running: {', '.join(self._children) or 'none'}")
        return found

    def _newest(self, service: str) -> _Instance:
        names = self.instance_names(service)
        if not names:
            raise KeyError(f"no running instance of {service!r}; running: {', '.join(self._children) or 'none'}")
        return self._children[names[-1]]

    def wait_ready(self, *, timeout: float, names: list[str] | None = None) -> None:
        """Wait until every instance (or those named) answers ready; fails if one exits meanwhile."""
        deadline = time.monotonic() + timeout
        pending = set(names if names is not None else self._children)
        while pending:
            for name in sorted(pending):
                child = self._children[name]
                if child.process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {child.process.returncode} while starting; "
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
        """Restart instances that died; returns their names. Gives up on one that keeps crashing."""
        restarted = []
        for child in self._children.values():
            code = child.process.poll()
            if code is None:
                continue
            if child.restarts >= _MAX_RESTARTS:
                raise RuntimeError(f"{child.name} crashed {child.restarts + 1} times; see {self.log_path(child.name)}")
            child.restarts += 1
            _log.warning("%s exited with code %s; restarting (%d)", child.name, code, child.restarts)
            child.process = self._spawn(child.name, child.service, child.port)
            restarted.append(child.name)
        return restarted

    def stop(self) -> None:
        for service in _STOP_ORDER:
            # A service's instances stop together: each finishes its message, commits and leaves the group.
            stopping = [i for i in self._children.values() if i.service == service]
            for instance in stopping:
                if instance.process.poll() is None:
                    instance.process.send_signal(signal.SIGTERM)
            for instance in stopping:
                stop(instance.process, timeout=_STOP_SECONDS)
                del self._children[instance.name]
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
