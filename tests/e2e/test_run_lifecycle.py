"""`tenderwatch run` leaves no process behind: after Ctrl-C, after a service crash, after its own death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

_SERVICE_MODULES = {f"services.{name}" for name in ("api", "ingest", "classifier", "matcher", "notifier")}


def _ignore_sigint() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(var: Path) -> tuple[subprocess.Popen[str], list[str]]:
    # Its own embedded broker and database: what is checked is that they, too, stop with it.
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.platform.cli", "run", "--no-demo", "--var", str(var), "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # Started with SIGINT ignored, as by a parent that ignores it or a shell without job control: Ctrl-C must
        # stop it all the same (Python keeps an inherited SIG_IGN unless told otherwise).
        preexec_fn=_ignore_sigint,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "tenderwatch is running" in line:
            return process, lines
    process.kill()
    raise AssertionError("tenderwatch run did not start:\n" + "".join(lines))


def _services(parent: int) -> dict[str, psutil.Process]:
    found = {}
    for child in psutil.Process(parent).children():
        cmdline = child.cmdline()
        module = next((part for part in cmdline if part in _SERVICE_MODULES), None)
        if module:
            found[module] = child
    return found


def _gone(processes: list[psutil.Process], timeout: float = 40.0) -> list[psutil.Process]:
    _gone_list, alive = psutil.wait_procs(processes, timeout=timeout)
    return list(alive)


def test_ctrl_c_stops_everything_and_a_crashed_service_is_restarted(tmp_path: Path) -> None:
    process, _lines = _start(tmp_path / "var")
    try:
        services = _services(process.pid)
        assert set(services) == _SERVICE_MODULES
        everything = psutil.Process(process.pid).children(recursive=True)
        assert "postgres" in {child.name() for child in everything}

        crashed = services["services.matcher"]
        crashed.kill()
        crashed.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "services.matcher" not in _services(process.pid):
            time.sleep(0.2)
        restarted = _services(process.pid).get("services.matcher")
        assert restarted is not None and restarted.pid != crashed.pid

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        assert "stopped: no process left running." in output
        assert _gone([*everything, restarted]) == []
    finally:
        if process.poll() is None:
            process.kill()


def test_killing_the_supervisor_takes_every_child_with_it(tmp_path: Path) -> None:
    process, _lines = _start(tmp_path / "var")
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(_services(process.pid)) == 5
    names = {child.name() for child in children}
    assert "postgres" in names and any(name.startswith("tansu") for name in names)
    process.kill()  # no chance to clean up: the kernel tells each child its parent died
    process.wait(10)
    assert _gone(children) == []
