"""At most N webhook requests in flight per endpoint, without ever making the dispatcher wait for one endpoint.

When the dispatcher claims a webhook delivery whose endpoint already has `limit` requests in flight, the delivery
waits in that endpoint's own queue, in memory, and starts as soon as one of the endpoint's requests ends: a fast
endpoint keeps `limit` requests busy back to back, a slow one holds `limit` requests and no more, and the others
never queue behind it.

A delivery held here is still claimed in PostgreSQL, and the claim has a lease: it must start well before the lease
ends, or another instance could take it too. So an endpoint's queue holds only what the endpoint can start within
`max_wait` seconds at the pace its requests have been taking (a moving average), `max_waiting` at most, and
`max_waiting_in_all` for every endpoint together. Beyond that the claim is handed back to the durable queue for
about the time the endpoint needs to catch up; a delivery that has waited more than `max_wait` all the same is
handed back too.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")

_FIRST_GUESS_SECONDS = 0.5  # the pace assumed of an endpoint before its first answer
_SMOOTHING = 0.2  # weight of the latest request in the moving average of an endpoint's request time
_MIN_HAND_BACK_SECONDS = 1.0


class Admission(StrEnum):
    START = "start"  # counted in flight: send it now
    WAIT = "wait"  # queued behind the endpoint's requests: `finish` will hand it out
    HAND_BACK = "hand_back"  # the endpoint has enough queued: give the claim back (see `hand_back_delay`)


@dataclass
class Handoff(Generic[T]):
    """What the end of one request frees: the next delivery to start (already counted in flight), and the
    deliveries that waited too long and go back to the durable queue."""

    start: T | None = None
    hand_back: list[T] = field(default_factory=list)


class EndpointInFlight(Generic[T]):
    def __init__(
        self,
        *,
        limit: int,
        max_waiting: int,
        max_waiting_in_all: int,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("at least one request per endpoint must be allowed in flight")
        self.limit = limit
        self.max_waiting = max_waiting
        self.max_waiting_in_all = max_waiting_in_all
        self._waiting_in_all = 0
        self.max_wait = max_wait
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._waiting: dict[str, deque[tuple[float, T]]] = {}
        self._pace: dict[str, float] = {}  # moving average of the endpoint's request time, in seconds

    def admit(self, endpoint: str, item: T) -> Admission:
        """Count `item` in flight, queue it behind its endpoint's requests, or say to hand it back."""
        if self._in_flight.get(endpoint, 0) < self.limit:
            self._in_flight[endpoint] = self._in_flight.get(endpoint, 0) + 1
            return Admission.START
        if self.waiting(endpoint) >= self.room(endpoint) or self._waiting_in_all >= self.max_waiting_in_all:
            return Admission.HAND_BACK
        self._waiting.setdefault(endpoint, deque()).append((self._clock(), item))
        self._waiting_in_all += 1
        return Admission.WAIT

    def room(self, endpoint: str) -> int:
        """How many deliveries may wait for `endpoint`: what it can start within `max_wait` at its pace."""
        rounds = self.max_wait / (2 * self._pace.get(endpoint, _FIRST_GUESS_SECONDS))  # half: a margin
        return max(0, min(self.max_waiting, int(rounds * self.limit)))

    def hand_back_delay(self, endpoint: str) -> float:
        """Seconds a handed-back delivery should stay in the durable queue: about the time its endpoint needs to
        work through what already waits for it (the shortest while its pace is unknown)."""
        pace = self._pace.get(endpoint)
        if pace is None:
            return _MIN_HAND_BACK_SECONDS
        drain = (self.waiting(endpoint) + self.in_flight(endpoint)) / self.limit * pace
        return min(self.max_wait, max(_MIN_HAND_BACK_SECONDS, drain))

    def finish(self, endpoint: str, seconds: float) -> Handoff[T]:
        """A request to `endpoint` ended after `seconds`: its place goes to the next delivery still fresh enough."""
        previous = self._pace.get(endpoint)
        self._pace[endpoint] = seconds if previous is None else (1 - _SMOOTHING) * previous + _SMOOTHING * seconds
        handoff: Handoff[T] = Handoff()
        handoff.hand_back = self._stale(endpoint)
        waiting = self._waiting.get(endpoint)
        if waiting:
            handoff.start = waiting.popleft()[1]  # takes the place that just ended: the count stays the same
            self._waiting_in_all -= 1
            if not waiting:
                del self._waiting[endpoint]
        else:
            remaining = self._in_flight.get(endpoint, 0) - 1
            if remaining > 0:
                self._in_flight[endpoint] = remaining
            else:
                self._in_flight.pop(endpoint, None)
        return handoff

    def sweep(self) -> list[T]:
        """The deliveries that waited more than `max_wait`, forgotten here: hand them back."""
        return [item for endpoint in list(self._waiting) for item in self._stale(endpoint)]

    def drain(self) -> list[T]:
        """Every waiting delivery, forgotten here (when the dispatcher stops: they go back to the durable queue)."""
        items = [item for waiting in self._waiting.values() for _queued_at, item in waiting]
        self._waiting.clear()
        self._waiting_in_all = 0
        return items

    def in_flight(self, endpoint: str) -> int:
        return self._in_flight.get(endpoint, 0)

    def waiting(self, endpoint: str) -> int:
        return len(self._waiting.get(endpoint, ()))

    def _stale(self, endpoint: str) -> list[T]:
        waiting = self._waiting.get(endpoint)
        stale: list[T] = []
        now = self._clock()
        while waiting and now - waiting[0][0] > self.max_wait:
            stale.append(waiting.popleft()[1])
            self._waiting_in_all -= 1
        if waiting is not None and not waiting:
            del self._waiting[endpoint]
        return stale
