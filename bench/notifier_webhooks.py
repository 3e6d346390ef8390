"""Webhooks per second from the notifier's durable queue to a local receiver, and what a slow endpoint costs the others.

The notifier runs as the service does (its dispatcher, default settings but private targets allowed), on the broker
and PostgreSQL of KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when both are set, else the embedded stack. Deliveries are
recorded in the queue in one transaction, as a burst of matches would be, and the clock starts at its commit; the
receivers are HTTP/1.1 servers on loopback in the same process.

1. Throughput to one endpoint (at most WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT requests in flight) and spread over 20
   endpoints, against the same signed POSTs sent straight from the sender with the same concurrency and no queue.
2. Latency of a fast endpoint's deliveries (commit to arrival), p50 and p99: alone, then with a slow endpoint
   (answers after 2 s) whose burst was recorded just before. The figure is the delay with the slow endpoint; the
   baseline the delay without.

Results are merged into `bench/results/notifier.json` under "webhooks" (the file's other keys are kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._stack import stack_environment
from bench._table import Row, percentile, run_facts
from schemas import (
    Criterion,
    Match,
    MatchedSubscription,
    MatchReason,
    NoticeKind,
    NoticeSummary,
    WebhookEndpoint,
    match_id_for,
)
from services.notifier import queue
from services.notifier.app import Notifier
from services.notifier.webhooks import endpoints
from services.notifier.webhooks.deliver import WebhookSender
from services.notifier.webhooks.payload import webhook_body, webhook_message_id
from services.notifier.webhooks.signing import generate_secret
from services.runtime.settings import Settings

RESULTS = Path(__file__).parent / "results" / "notifier.json"
_ONE_ENDPOINT = 1000
_SPREAD_ENDPOINTS, _SPREAD_EACH = 20, 100
_LATENCY_FAST, _LATENCY_SLOW = 200, 100
_SLOW_SECONDS = 2.0
_GLOBAL_CONCURRENCY = 32  # the dispatcher's (services/notifier/app.py)


def _progress(message: str) -> None:
    print(f"  [webhooks] {message}", file=sys.stderr, flush=True)


class _Receiver:
    """Answers 200 to every POST after `delay` seconds; notes when each match id arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.arrivals: dict[str, float] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.arrivals[json.loads(body)["data"]["match_id"]] = time.perf_counter()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _match(subscriber: str, endpoint_id: str, number: int) -> Match:
    notice_id = f"bench:{endpoint_id}:{number}"
    return Match(
        match_id=match_id_for(subscriber, notice_id, "1"),
        subscriber_id=subscriber,
        notice=NoticeSummary(
            notice_id=notice_id, version="1", kind=NoticeKind.COMPETITION, title=f"Entretien de voirie, lot {number}",
            language="fr", buyer_name="Ville de Toulouse", departments=["31"], cpv_main="45233141",
        ),
        subscriptions=[
            MatchedSubscription(
                subscription_id="sub_bench", name="Voirie",
                reasons=[MatchReason(criterion=Criterion.DEPARTMENT, values=["31"], notice_values=["31"])],
                webhook_endpoint_id=endpoint_id,
            )
        ],
        matched_at=datetime.now(UTC),
    )  # fmt: skip


class _Bench:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.pool = notifier.runtime.pool
        self._run = time.time_ns()

    async def endpoint(self, receiver: _Receiver, name: str) -> tuple[str, str]:
        subscriber, endpoint_id = f"acc_bench_{self._run}", f"we_bench_{self._run}_{name}"
        await endpoints.upsert(
            self.pool,
            WebhookEndpoint(
                endpoint_id=endpoint_id, subscriber_id=subscriber, url=receiver.url, secret=generate_secret(),
                updated_at=datetime.now(UTC),
            ),
        )  # fmt: skip
        return subscriber, endpoint_id

    async def record(self, matches: list[Match]) -> float:
        """Queue the matches in one transaction; returns when it committed."""
        async with self.pool.acquire() as conn, conn.transaction():
            for match in matches:
                await queue.record(conn, match)
        return time.perf_counter()

    async def clear(self) -> None:
        """Forget the deliveries of the last step once every one of them is settled."""
        deadline = time.monotonic() + 120
        while await self.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending', 'retrying')"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("deliveries are still being sent: see the notifier's log")
            await asyncio.sleep(0.05)
        await self.pool.execute("DELETE FROM delivery_attempts")
        await self.pool.execute("DELETE FROM deliveries")


async def _arrived(receivers: list[tuple[_Receiver, list[Match]]], *, within: float = 300.0) -> None:
    deadline = time.monotonic() + within
    while any(len(r.arrivals) < len(ms) for r, ms in receivers):
        if time.monotonic() > deadline:
            raise RuntimeError("webhooks did not all arrive: see the notifier's log")
        await asyncio.sleep(0.01)


async def _throughput(bench: _Bench, endpoint_count: int, each: int) -> dict[str, Any]:
    receivers = [_Receiver() for _ in range(endpoint_count)]
    planned: list[tuple[_Receiver, list[Match]]] = []
    for number, receiver in enumerate(receivers):
        await receiver.start()
        subscriber, endpoint_id = await bench.endpoint(receiver, f"t{endpoint_count}_{number}")
        planned.append((receiver, [_match(subscriber, endpoint_id, i) for i in range(each)]))
    committed = await bench.record([m for _r, ms in planned for m in ms])
    await _arrived(planned)
    last = max(t for r, _ms in planned for t in r.arrivals.values())
    for receiver in receivers:
        await receiver.stop()
    await bench.clear()
    total = endpoint_count * each
    return {"endpoints": endpoint_count, "webhooks": total, "per_second": total / (last - committed)}


async def _direct(endpoint_count: int, each: int, in_flight: int) -> dict[str, Any]:
    """The baseline: the same signed POSTs straight from the sender, `in_flight` at a time, no queue."""
    receivers = [_Receiver() for _ in range(endpoint_count)]
    jobs: list[tuple[_Receiver, Match, str]] = []
    for number, receiver in enumerate(receivers):
        await receiver.start()
        jobs += [(receiver, _match("acc_direct", f"we_direct_{number}", i), f"we_direct_{number}") for i in range(each)]
    sender = WebhookSender(
        timeout=15.0, max_response_bytes=65536, allow_private=True, max_retry_after=timedelta(hours=10)
    )
    secret = generate_secret()
    slots = asyncio.Semaphore(in_flight)

    async def send(receiver: _Receiver, match: Match, endpoint_id: str) -> None:
        async with slots:
            await sender.send(
                receiver.url,
                secret=secret,
                message_id=webhook_message_id(match.match_id, endpoint_id),
                body=webhook_body(match, endpoint_id=endpoint_id),
            )

    started = time.perf_counter()
    await asyncio.gather(*(send(*job) for job in jobs))
    elapsed = time.perf_counter() - started
    await sender.aclose()
    for receiver in receivers:
        await receiver.stop()
    return {
        "endpoints": endpoint_count,
        "webhooks": len(jobs),
        "in_flight": in_flight,
        "per_second": len(jobs) / elapsed,
    }


async def _fast_latency(bench: _Bench, *, with_slow: bool) -> dict[str, Any]:
    fast, slow = _Receiver(), _Receiver(delay=_SLOW_SECONDS)
    await fast.start()
    await slow.start()
    label = "slow" if with_slow else "alone"
    subscriber, fast_id = await bench.endpoint(fast, f"fast_{label}")
    if with_slow:
        _subscriber, slow_id = await bench.endpoint(slow, "slow")
        await bench.record([_match(subscriber, slow_id, i) for i in range(_LATENCY_SLOW)])
    fast_matches = [_match(subscriber, fast_id, i) for i in range(_LATENCY_FAST)]
    committed = await bench.record(fast_matches)
    await _arrived([(fast, fast_matches)])
    slow_still_due = _LATENCY_SLOW - len(slow.arrivals) if with_slow else 0
    delays = sorted((at - committed) * 1000 for at in fast.arrivals.values())
    await fast.stop()
    await slow.stop()
    return {
        "fast_webhooks": len(delays),
        "slow_webhooks_not_yet_answered_when_the_fast_ones_were_all_in": slow_still_due,
        "ms": {"p50": percentile(delays, 0.5), "p99": percentile(delays, 0.99), "max": delays[-1]},
    }


@contextlib.asynccontextmanager
async def _notifier(environment: dict[str, str]) -> AsyncIterator[Notifier]:
    settings = Settings(
        kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=environment["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=environment["DATABASE_URL"],
        webhook_allow_private=True,
    )
    notifier = Notifier(settings)
    await notifier.runtime.start()
    try:
        yield notifier
    finally:
        await notifier.runtime.stop()


async def _measure(environment: dict[str, str]) -> dict[str, Any]:
    async with _notifier(environment) as notifier:
        bench = _Bench(notifier)
        await bench.clear()
        limit = notifier.settings.webhook_max_in_flight_per_endpoint
        _progress(f"{_ONE_ENDPOINT} webhooks to one endpoint")
        one = await _throughput(bench, 1, _ONE_ENDPOINT)
        _progress(f"{_SPREAD_ENDPOINTS * _SPREAD_EACH} webhooks over {_SPREAD_ENDPOINTS} endpoints")
        spread = await _throughput(bench, _SPREAD_ENDPOINTS, _SPREAD_EACH)
        _progress("a fast endpoint alone, then beside a slow one")
        alone = await _fast_latency(bench, with_slow=False)
        await bench.clear()
        beside_slow = await _fast_latency(bench, with_slow=True)  # the slow endpoint's rest goes back at stop
    _progress("the same POSTs without the queue")
    direct_one = await _direct(1, _ONE_ENDPOINT, limit)
    direct_spread = await _direct(_SPREAD_ENDPOINTS, _SPREAD_EACH, min(_GLOBAL_CONCURRENCY, _SPREAD_ENDPOINTS * limit))
    return {
        **run_facts(),
        "max_in_flight_per_endpoint": limit,
        "slow_endpoint_answers_after_seconds": _SLOW_SECONDS,
        "throughput": {"one_endpoint": one, "spread": spread},
        "baseline_without_queue": {"one_endpoint": direct_one, "spread": direct_spread},
        "fast_endpoint_latency": {"alone": alone, "beside_a_slow_endpoint": beside_slow},
    }


def _merge(webhooks: dict[str, Any]) -> None:
    """Write the "webhooks" key of the results file, keeping what other benchmarks wrote there."""
    current = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    current["webhooks"] = webhooks
    RESULTS.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run() -> list[Row]:
    with stack_environment() as environment:
        result = asyncio.run(_measure(environment))
    _merge(result)
    one, spread = result["throughput"]["one_endpoint"], result["throughput"]["spread"]
    direct = result["baseline_without_queue"]
    alone, beside = (result["fast_endpoint_latency"][k]["ms"] for k in ("alone", "beside_a_slow_endpoint"))
    limit = result["max_in_flight_per_endpoint"]
    return [
        Row(f"webhooks/s from the queue, 1 endpoint ({limit} in flight)", one["per_second"], "/s",
            "same POSTs, no queue", direct["one_endpoint"]["per_second"]),
        Row(f"webhooks/s from the queue, {spread['endpoints']} endpoints", spread["per_second"], "/s",
            "same POSTs, no queue", direct["spread"]["per_second"]),
        Row("fast endpoint p50 beside a slow one", beside["p50"], "ms", "fast endpoint alone", alone["p50"], False),
        Row("fast endpoint p99 beside a slow one", beside["p99"], "ms", "fast endpoint alone", alone["p99"], False),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench._table import print_table

    print_table(run())
