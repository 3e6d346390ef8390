"""The per-endpoint in-flight limit: a busy endpoint's deliveries wait for it, others are never held up."""

from __future__ import annotations

from services.notifier.webhooks.inflight import Admission, EndpointInFlight


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: Clock, *, limit: int = 2, max_waiting: int = 100, in_all: int = 1000) -> EndpointInFlight[str]:
    return EndpointInFlight(limit=limit, max_waiting=max_waiting, max_waiting_in_all=in_all, max_wait=60.0, clock=clock)


def test_an_endpoint_at_its_limit_queues_its_deliveries_and_leaves_other_endpoints_alone() -> None:
    limiter = _limiter(Clock())
    assert [limiter.admit("slow", f"s{i}") for i in range(4)] == [
        Admission.START,
        Admission.START,
        Admission.WAIT,
        Admission.WAIT,
    ]
    assert [limiter.admit("fast", f"f{i}") for i in range(2)] == [Admission.START, Admission.START]
    assert (limiter.in_flight("slow"), limiter.waiting("slow"), limiter.in_flight("fast")) == (2, 2, 2)


def test_each_request_that_ends_hands_its_place_to_the_next_delivery_of_its_endpoint_in_order() -> None:
    limiter = _limiter(Clock())
    for item in ("a", "b", "c", "d"):
        limiter.admit("ep", item)
    first = limiter.finish("ep", 0.01)
    second = limiter.finish("ep", 0.01)
    assert (first.start, second.start) == ("c", "d")
    assert limiter.in_flight("ep") == 2  # the places were handed over, not freed
    assert limiter.finish("ep", 0.01).start is None
    assert limiter.finish("ep", 0.01).start is None
    assert (limiter.in_flight("ep"), limiter.waiting("ep")) == (0, 0)
    assert limiter.admit("ep", "e") is Admission.START


def test_a_slow_endpoint_may_queue_only_what_it_can_start_before_the_claim_ages() -> None:
    limiter = _limiter(Clock(), limit=2)
    limiter.admit("slow", "s0")
    limiter.admit("slow", "s1")
    limiter.finish("slow", 15.0)  # answers in 15 s: of 60 s, half (the margin) fits 2 rounds of 2 requests
    limiter.admit("slow", "s2")
    assert limiter.room("slow") == 4
    assert [limiter.admit("slow", f"w{i}") for i in range(5)] == [Admission.WAIT] * 4 + [Admission.HAND_BACK]
    # back to the durable queue for about the time the endpoint needs for what it has: (4 waiting + 2 in flight) / 2
    # rounds of 15 s
    assert limiter.hand_back_delay("slow") == 45.0


def test_a_fast_endpoint_may_queue_up_to_the_cap_and_hands_back_after_a_short_while() -> None:
    limiter = _limiter(Clock(), limit=2, max_waiting=3)
    limiter.admit("fast", "f0")
    limiter.admit("fast", "f1")
    limiter.finish("fast", 0.002)
    limiter.admit("fast", "f2")
    assert [limiter.admit("fast", f"w{i}") for i in range(4)] == [Admission.WAIT] * 3 + [Admission.HAND_BACK]
    assert limiter.hand_back_delay("fast") == 1.0


def test_the_waiting_deliveries_of_every_endpoint_together_are_capped() -> None:
    limiter = _limiter(Clock(), limit=1, in_all=2)
    for endpoint in ("a", "b", "c"):
        limiter.admit(endpoint, f"{endpoint}0")
    assert limiter.admit("a", "a1") is Admission.WAIT
    assert limiter.admit("b", "b1") is Admission.WAIT
    assert limiter.admit("c", "c1") is Admission.HAND_BACK
    assert limiter.admit("d", "d0") is Admission.START  # an idle endpoint never waits
    assert limiter.finish("a", 0.1).start == "a1"
    assert limiter.admit("c", "c1") is Admission.WAIT


def test_deliveries_that_waited_too_long_are_handed_back_not_started() -> None:
    clock = Clock()
    limiter = _limiter(clock, limit=1)
    limiter.admit("ep", "a")
    limiter.admit("ep", "old")
    clock.now += 61
    limiter.admit("ep", "new")
    handoff = limiter.finish("ep", 0.5)
    assert (handoff.start, handoff.hand_back) == ("new", ["old"])
    clock.now += 61
    limiter.admit("other", "x")
    limiter.admit("other", "stale")
    clock.now += 61
    assert limiter.sweep() == ["stale"]
    assert limiter.waiting("other") == 0


def test_drain_forgets_every_waiting_delivery() -> None:
    limiter = _limiter(Clock(), limit=1)
    for item in ("a0", "a1", "a2"):
        limiter.admit("a", item)
    limiter.admit("b", "b0")
    limiter.admit("b", "b1")
    assert sorted(limiter.drain()) == ["a1", "a2", "b1"]
    assert limiter.finish("a", 0.1).start is None
