"""Sending one signed webhook: SSRF guard, no redirects, bounded time and response."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from services.notifier.outcome import Outcome
from services.notifier.webhooks.signing import signed_headers
from services.runtime.ssrf import UnsafeUrlError, check_webhook_url, is_public_address

_MAX_RESPONSE_BYTES = 64 * 1024


async def _resolve_public(url: str, *, allow_private: bool) -> None:
    """Every address the host resolves to must be public (unless private targets are allowed)."""
    check_webhook_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not is_public_address(address):
            raise UnsafeUrlError(f"{host} resolves to {address}, which is not a public address")


async def send_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    message_id: str,
    timestamp: int,
    body: bytes,
    allow_private: bool,
) -> Outcome:
    try:
        await _resolve_public(url, allow_private=allow_private)
    except UnsafeUrlError as exc:
        return Outcome.failed(f"refused to call the endpoint: {exc}")
    except OSError as exc:
        return Outcome.retry(f"could not resolve the endpoint's host: {exc}")
    headers = signed_headers(secret, message_id, timestamp, body)
    headers["user-agent"] = "tenderwatch-webhooks/1"
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received >= _MAX_RESPONSE_BYTES:
                    break  # the answer's body is not used; never read an unbounded one
            status = response.status_code
    except httpx.TimeoutException:
        return Outcome.retry("the endpoint did not answer in time")
    except httpx.HTTPError as exc:
        return Outcome.retry(f"could not reach the endpoint: {type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return Outcome.sent(f"HTTP {status}")
    if status == 410:
        return Outcome.suppressed("HTTP 410 Gone: the endpoint asked to be disabled")
    if 300 <= status < 400:
        return Outcome.failed(f"HTTP {status}: redirects are not followed; register the final URL")
    return Outcome.retry(f"HTTP {status}")
