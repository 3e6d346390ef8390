"""`free_port`: ports a server can bind a moment later, clear of those the kernel gives outgoing connections."""

from __future__ import annotations

import random
import socket

import pytest

from services.runtime.processes import _ephemeral_ports, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    ephemeral = _ephemeral_ports()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port < ephemeral.start for port in ports)
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", port))
            server.listen()


def _listening_below_the_ephemeral_range() -> socket.socket:
    for port in range(20_000, _ephemeral_ports().start):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            server.close()
            continue
        server.listen()
        return server
    raise AssertionError("no port to listen on below the ephemeral range")


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with _listening_below_the_ephemeral_range() as busy:
        taken = busy.getsockname()[1]
        real = random.randrange
        first = [taken]  # the first pick is the busy port, later ones are random again
        monkeypatch.setattr(random, "randrange", lambda low, high: first.pop() if first else real(low, high))
        port = free_port()
        assert not first and port != taken and port < _ephemeral_ports().start
