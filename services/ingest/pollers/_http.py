"""Fetching pages and documents for the pollers: bounded retries, Retry-After, bounded sizes, no host hopping.

- 429 and 503 wait what `Retry-After` says (delta-seconds or an HTTP date, capped); without it, and for
  408, other 5xx and network errors, exponential backoff with jitter. The SAME request is retried, a bounded
  number of times, then `PollError`: a page is never skipped.
- Other error statuses (400, 401, 404...) are not retried: `PollError` at once, with the start of the body.
- Redirects are followed only within the origin of the request (scheme, host and port), at most a few.
- A response larger than its cap is refused while it streams in.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import httpx

from services.ingest.pollers.source import PageRequest, PollError, origin_of

_RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class FetchPolicy:
    """How hard and how long the poller insists, and how much it reads. The clock is injectable for tests."""

    attempts: int = 5  # per request, the first one included
    backoff_base: float = 1.0  # seconds before the 2nd attempt; doubles each time, with jitter
    backoff_max: float = 60.0
    retry_after_max: float = 600.0  # a longer Retry-After is shortened to this
    timeout: float = 30.0
    max_page_bytes: int = 32 * 1024 * 1024  # a search page
    max_document_bytes: int = 5 * 1024 * 1024  # one document; set it from settings.max_document_bytes
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)


class TooLargeError(PollError):
    """A document over its size cap: the poll loop dead-letters it instead of stopping."""


class HttpFetcher:
    def __init__(self, client: httpx.AsyncClient, policy: FetchPolicy) -> None:
        self._client = client
        self._policy = policy

    async def fetch(self, request: PageRequest, *, max_bytes: int) -> bytes:
        """The body of a 2xx answer to `request`, retried as the policy says. Raises PollError."""
        policy = self._policy
        last_problem = ""
        for attempt in range(1, policy.attempts + 1):
            try:
                status, headers, body = await self._send(request, max_bytes)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                wait = self._backoff(attempt)
            else:
                if 200 <= status < 300:
                    return body
                excerpt = body[:300].decode("utf-8", "replace")
                last_problem = f"HTTP {status}: {excerpt}"
                if status not in _RETRIED_STATUSES:
                    raise PollError(f"{request.method} {request.url} answered {last_problem}; not retried")
                retry_after = self._retry_after(headers.get("retry-after")) if status in _RETRY_AFTER_STATUSES else None
                wait = retry_after if retry_after is not None else self._backoff(attempt)
            if attempt < policy.attempts:
                await policy.sleep(wait)
        raise PollError(
            f"{request.method} {request.url} failed {policy.attempts} times (last: {last_problem}); "
            "the cursor stays on this page and the next run retries it"
        )

    async def _send(self, request: PageRequest, max_bytes: int) -> tuple[int, httpx.Headers, bytes]:
        url, method = request.url, request.method
        params, payload = request.params, request.json
        for _ in range(_MAX_REDIRECTS + 1):
            async with self._client.stream(
                method, url, params=params, json=payload, timeout=self._policy.timeout, follow_redirects=False
            ) as response:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    target = urljoin(str(response.url), response.headers["location"])
                    if origin_of(target) != origin_of(request.url):
                        raise PollError(
                            f"{request.url} redirects to another host ({target}); refused: "
                            "configure the source with its final address"
                        )
                    url, params = target, None
                    if response.status_code == 303:
                        method, payload = "GET", None
                    continue
                return response.status_code, response.headers, await _read_bounded(response, max_bytes)
        raise PollError(f"{request.url} redirects more than {_MAX_REDIRECTS} times; refused")

    def _backoff(self, attempt: int) -> float:
        ceiling: float = min(self._policy.backoff_max, self._policy.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + self._policy.jitter() / 2)  # between half and all of the ceiling

    def _retry_after(self, value: str | None) -> float | None:
        if not value:
            return None
        text = value.strip()
        if text.isdigit():
            seconds = float(text)
        else:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = max(0.0, (moment - self._policy.now()).total_seconds())
        return min(seconds, self._policy.retry_after_max)


async def _read_bounded(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLargeError(f"{response.url} announces {declared} bytes, over the limit of {max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise TooLargeError(f"{response.url} sends more than the limit of {max_bytes} bytes")
    return bytes(body)
