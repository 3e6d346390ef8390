"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    die_with_parent()
    os.setpgrp()  # a Ctrl-C in the terminal reaches the supervisor only; it stops the children in order


def spawn(
    args: Sequence[str],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    out: IO[Any] | int = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
    try:
        return subprocess.Popen(  # noqa: S603 - arguments are ours, never a shell
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            preexec_fn=_child_setup,
        )
    finally:
        if not isinstance(out, int):
            out.close()


def stop(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
    """Ask a child to stop, wait for it, kill it if it does not."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(5)


# Ports handed out by `free_port` in this process: never the same one twice.
_GIVEN_PORTS: set[int] = set()
_LOWEST_PORT = 10_000  # clear of the well-known and most registered ports
_PORT_TRIES = 200


def _ephemeral_ports() -> range:
    """The ports the kernel picks from for the local end of outgoing connections (and for bind to port 0)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 49_152, 65_535  # IANA's dynamic range: the default of the other systems
    return range(low, high + 1)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server that binds it a moment later.

    Taken below the ephemeral range, never from it: a port the kernel hands out for bind(0) can become, before the
    server binds it, the local end of some process's outgoing connection. A service that connects to the broker
    and the database before it listens then failed with "address already in use" (seen in the e2e tests, where
    dozens of processes connect at once). Checked free by binding it, and never handed out twice by one process.
    """
    ephemeral = _ephemeral_ports()
    if ephemeral.start - _LOWEST_PORT >= _PORT_TRIES:
        for _ in range(_PORT_TRIES):
            port = random.randrange(_LOWEST_PORT, ephemeral.start)  # noqa: S311 - a port, not a secret
            if port in _GIVEN_PORTS:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _GIVEN_PORTS.add(port)
            return port
    # No room below the ephemeral range (or all tried ports taken): the kernel's pick, as a last resort.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
    _GIVEN_PORTS.add(chosen)
    return chosen


def wait_for_port(host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with code {process.returncode} before listening on {port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")
