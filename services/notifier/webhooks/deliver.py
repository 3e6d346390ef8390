"""Sending one signed webhook: the SSRF guard with the checked address pinned, no redirects, bounded time and answer.

The connection pool (httpcore) connects through `_PinnedNetworkBackend`: each new connection resolves the host once,
refuses it unless every address is public, and connects to one of those very addresses. The URL, the `Host` header
and TLS (SNI and certificate verification) keep the host name, so nothing else changes; a DNS answer that changes
after the check (rebinding) cannot redirect the connection. A kept-alive connection was checked when it was opened
and is reused only for the same scheme, host and port.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpcore
import httpx

from services.notifier.outcome import Outcome
from services.notifier.webhooks.signing import signed_headers
from services.runtime.ssrf import Resolver, UnsafeUrlError, check_webhook_url, resolve_public, system_resolver

USER_AGENT = "tenderwatch-webhooks/1"
_KEEPALIVE_CONNECTIONS = 64
_KEEPALIVE_SECONDS = 30.0


class _PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses `resolve_public` has just checked for the host being called."""

    def __init__(self, *, allow_private: bool, resolver: Resolver) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_public(host, port, allow_private=self._allow_private, resolver=self._resolver)
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # every one of them was checked; try them in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # resolve_public never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are only sent over TCP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class WebhookSender:
    """POSTs signed webhook bodies and sorts the answers into sent / retry / failed / suppressed (410)."""

    def __init__(
        self,
        *,
        timeout: float,
        max_response_bytes: int,
        allow_private: bool,
        max_retry_after: timedelta,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._allow_private = allow_private
        self._max_retry_after = max_retry_after
        # No limit on connections here: the dispatcher bounds sends in all and per endpoint.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,
            max_keepalive_connections=_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=_KEEPALIVE_SECONDS,
            network_backend=_PinnedNetworkBackend(allow_private=allow_private, resolver=resolver),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def send(
        self,
        url: str,
        *,
        secret: str,
        message_id: str,
        body: bytes,
        previous_secret: str | None = None,
        timestamp: int | None = None,
    ) -> Outcome:
        """One attempt, `timeout` seconds at most from resolving the host to reading the answer."""
        try:
            check_webhook_url(url, allow_private=self._allow_private)
            target = httpx.URL(url)  # host names in IDNA, as httpx sends them
        except (UnsafeUrlError, httpx.InvalidURL) as exc:
            return Outcome.failed(f"refused to call the endpoint: {exc}")
        headers = signed_headers(
            secret,
            message_id,
            int(time.time()) if timestamp is None else timestamp,
            body,
            previous_secret=previous_secret,
        )
        headers["user-agent"] = USER_AGENT
        request_url = httpcore.URL(
            scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
        )
        limits = dict.fromkeys(("connect", "read", "write", "pool"), self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                async with self._pool.stream(
                    "POST", request_url, headers=list(headers.items()), content=body, extensions={"timeout": limits}
                ) as response:
                    await self._read_capped(response)
                    status = response.status
                    retry_after = self._retry_after(response.headers)
        except UnsafeUrlError as exc:
            return Outcome.failed(f"refused to call the endpoint: {exc}")
        except (TimeoutError, httpcore.TimeoutException):
            return Outcome.retry(f"the endpoint did not answer within {self._timeout:g} s")
        except OSError as exc:  # the host does not resolve (now)
            return Outcome.retry(f"could not resolve the endpoint's host: {exc}")
        except httpcore.ProtocolError as exc:
            return Outcome.retry(f"the endpoint's answer is not valid HTTP: {type(exc).__name__}: {exc}")
        except httpcore.NetworkError as exc:
            return Outcome.retry(f"could not reach the endpoint: {type(exc).__name__}: {exc}")
        return self._outcome(status, retry_after)

    async def _read_capped(self, response: httpcore.Response) -> None:
        """Read at most `max_response_bytes` of the answer's body: it is not used, and never read unbounded."""
        received = 0
        if self._max_response_bytes <= 0:
            return
        async for chunk in response.aiter_stream():
            received += len(chunk)
            if received >= self._max_response_bytes:
                break  # leaving the stream early closes the connection instead of draining it

    def _retry_after(self, headers: list[tuple[bytes, bytes]]) -> timedelta | None:
        """`Retry-After` in seconds or as an HTTP date, capped at the schedule's longest wait."""
        raw = next((value for name, value in headers if name.lower() == b"retry-after"), None)
        if raw is None:
            return None
        text = raw.decode("latin-1").strip()
        try:
            wait = timedelta(seconds=int(text)) if text.isdigit() else parsedate_to_datetime(text) - datetime.now(UTC)
        except (ValueError, TypeError, OverflowError):
            return None  # unreadable: the schedule decides
        return max(timedelta(0), min(wait, self._max_retry_after))

    @staticmethod
    def _outcome(status: int, retry_after: timedelta | None) -> Outcome:
        if 200 <= status < 300:
            return Outcome.sent(f"HTTP {status}")
        if status == 410:
            return Outcome.suppressed("HTTP 410 Gone: the endpoint asked to be disabled")
        if 300 <= status < 400:
            return Outcome.failed(f"HTTP {status}: redirects are not followed; register the final URL")
        detail = f"HTTP {status}"
        if retry_after is not None:
            detail += f", Retry-After {int(retry_after.total_seconds())} s"
        return Outcome.retry(detail, after=retry_after)
