"""API: accounts, API keys, subscriptions, webhook endpoints, notice publishing and the notices read model.

Subscription and endpoint changes reach Kafka through the transactional outbox; classified notices are read
from `notices.classified` into the read model behind `GET /v1/notices/{id}` and `POST /v1/subscriptions/preview`.
Subscription filters are checked against the classifier's code lists (`filters.FilterValidator`) and previewed
with the shared definition of what they mean (`schemas.filtering.rules`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas import (
    ClassifiedNotice,
    DeliverySettings,
    MatchReason,
    Subscription,
    SubscriptionChange,
    SubscriptionFilters,
    Topic,
    WebhookEndpoint,
    WithoutValue,
)
from schemas.filtering.query import Term, as_clauses
from schemas.filtering.rules import (
    TITLE_MARK,
    CompiledFilters,
    NoticeView,
    query_search_keys,
    reasons,
    search_keys,
)
from services.api import keys, outbox, unsubscribe
from services.api.filters import FilterValidator
from services.api.records import subscription_from_row
from services.runtime import correlation
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.ssrf import UnsafeUrlError, check_webhook_destination

_log = logging.getLogger(__name__)

SERVICE = "api"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What a source document may be sent as; ingest detects the format from the content itself.
_DOCUMENT_TYPES = (
    "application/xml",
    "text/xml",
    "application/json",
    "text/csv",
    "application/csv",
    "text/plain",
    "application/octet-stream",
    "",
)
# Active API keys an account may hold at once: enough to rotate them per client, few enough to audit.
_MAX_ACTIVE_API_KEYS = 10
# A key's last use is written at most this often: a write per call would cost every call a round trip and a row
# version, while "used in the last five minutes" tells a rotating client all it needs.
_KEY_USE_RECORDED_EVERY = timedelta(minutes=5)
_API_KEY_DATES = ("created_at", "revoked_at", "last_used_at")
# Notices read and matched per round trip by a preview: enough to amortise the round trip, small enough to stream.
_PREVIEW_CHUNK = 500


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=320)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class SubscriptionIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    filters: SubscriptionFilters = Field(default_factory=SubscriptionFilters)
    delivery: DeliverySettings
    active: bool = True


class PreviewIn(_Body):
    filters: SubscriptionFilters = Field(default_factory=SubscriptionFilters)
    days: int = Field(default=30, ge=1, le=365, description="how many days of published notices to look at")
    sample: int = Field(default=10, ge=0, le=50, description="how many matching notices to show, most recent first")


class WebhookEndpointIn(_Body):
    url: str = Field(max_length=2000)


_bearer = HTTPBearer(auto_error=False)


async def _account_id(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The account whose API key authorises the request; 401 otherwise."""
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "send the API key from POST /v1/accounts as 'Authorization: Bearer <api_key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    parts = keys.split_api_key(credentials.credentials) if credentials is not None else None
    if parts is None:
        raise unauthorized
    api: Api = request.app.state.api
    row = await api.runtime.pool.fetchrow(
        "SELECT account_id, key_hash, last_used_at FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", parts[0]
    )
    if row is None or not keys.secret_matches(parts[1], row["key_hash"]):
        raise unauthorized
    last_used = row["last_used_at"]
    if last_used is None or datetime.now(UTC) - last_used >= _KEY_USE_RECORDED_EVERY:
        # Conditional in SQL too: concurrent calls with the same key write it once.
        await api.runtime.pool.execute(
            """UPDATE api_keys SET last_used_at = now()
               WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at <= now() - $2::interval)""",
            parts[0],
            _KEY_USE_RECORDED_EVERY,
        )
    owner: str = row["account_id"]
    return owner


Account = Annotated[str, Depends(_account_id)]


async def _operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Operator endpoints take OPERATOR_TOKEN as bearer token; without that setting they do not exist."""
    api: Api = request.app.state.api
    token = api.settings.operator_token
    if token is None:
        raise HTTPException(404, "operator endpoints are disabled: set OPERATOR_TOKEN to enable them")
    if credentials is None or not keys.tokens_equal(credentials.credentials, token.get_secret_value()):
        raise HTTPException(401, "send OPERATOR_TOKEN as 'Authorization: Bearer <token>'")


Operator = Depends(_operator)


class Api:
    def __init__(self, settings: Settings, filter_validator: FilterValidator | None = None) -> None:
        self.settings = settings
        self.filter_validator = filter_validator or FilterValidator.load()
        self.runtime = Runtime(settings, service=SERVICE, migrations="services.api")
        self._relay: outbox.OutboxRelay | None = None
        self._ingest: httpx.AsyncClient | None = None
        self.runtime.consume(
            Topic.NOTICES_CLASSIFIED,
            self._on_classified,
            description="Kept as the read model behind GET /v1/notices/{notice_id}",
        )
        # For the AsyncAPI document: the outbox relay publishes on these topics.
        self.runtime.publisher(
            Topic.SUBSCRIPTIONS_CHANGES,
            schema=SubscriptionChange,
            description="SubscriptionChange keyed by subscription_id (compacted); a tombstone deletes",
        )
        self.runtime.publisher(
            Topic.WEBHOOK_ENDPOINTS_CHANGES,
            schema=WebhookEndpoint,
            description="WebhookEndpoint keyed by endpoint_id (compacted)",
        )
        self.runtime.on_start(self._start)
        self.runtime.on_stop(self._stop)

    async def _start(self) -> None:
        self._relay = outbox.OutboxRelay(self.runtime.pool, self.runtime.broker)
        await self._relay.start()
        self._ingest = httpx.AsyncClient(base_url=self.settings.ingest_url, timeout=30.0, trust_env=False)

    async def _stop(self) -> None:
        if self._relay is not None:
            await self._relay.stop()
        if self._ingest is not None:
            await self._ingest.aclose()

    async def _on_classified(self, notice: ClassifiedNotice) -> None:
        await self.store_notice(notice)

    async def store_notice(self, notice: ClassifiedNotice) -> None:
        """Keep a classified notice in the read model; an older classification never replaces a newer one."""
        # The matching rules' own CPV prefixes and text tokens, for previews to narrow on.
        view = NoticeView.of(notice)
        await self.runtime.pool.execute(
            """INSERT INTO notices (notice_id, version, kind, title, buyer_name, departments, regions, sectors,
                                    published_at, deadline, document, classified_at, cpv_prefixes, search_tokens,
                                    countries, buyer_category, procedure, buyer_keys, sme_suitable, reserved,
                                    value_eur, matching_columns, received_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14,
                       $15, $16, $17, $18, $19, $20, $21, true, now())
               ON CONFLICT (notice_id) DO UPDATE SET version = $2, kind = $3, title = $4, buyer_name = $5,
                   departments = $6, regions = $7, sectors = $8, published_at = $9, deadline = $10,
                   document = $11::jsonb, classified_at = $12, cpv_prefixes = $13, search_tokens = $14,
                   countries = $15, buyer_category = $16, procedure = $17, buyer_keys = $18, sme_suitable = $19,
                   reserved = $20, value_eur = $21, matching_columns = true, received_at = now()
               WHERE notices.classified_at <= $12""",
            notice.notice_id, notice.version, notice.kind.value, notice.title, notice.buyer.name,
            notice.departments, notice.regions, notice.sectors, notice.published_at, notice.deadline,
            notice.model_dump_json(), notice.classified_at, sorted(view.cpv_prefixes), sorted(search_keys(view)),
            sorted(view.countries), view.buyer_category, view.procedure, sorted(view.buyer_keys), view.sme_suitable,
            view.reserved, view.value_eur,
        )  # fmt: skip

    def check_filters(self, filters: SubscriptionFilters) -> None:
        """422 listing every value of `filters` outside the code lists, in FastAPI's validation error shape."""
        problems = self.filter_validator.problems(filters)
        if problems:
            raise RequestValidationError(
                [
                    {"type": "value_error", "loc": ("body", "filters", *p.loc), "msg": p.msg, "input": p.input}
                    for p in problems
                ]
            )

    async def preview(self, filters: SubscriptionFilters, *, days: int, sample: int) -> dict[str, Any]:
        """What `filters` would have matched among the notices published in the last `days` days.

        Each notice is matched as the matcher would have when it was published (deadline criteria included); a
        notice without a publication date counts from when it reached the API. The window is narrowed in SQL by the
        values the read model keeps; when those say the whole of the filters (`_Selection.exact`: all but keyword
        phrases), SQL counts and only the sample is matched. Otherwise the candidates are streamed in chunks and
        matched in a worker thread, so that a long preview does not stall the other requests.
        """
        compiled = CompiledFilters.of(filters)  # the query parses: check_filters ran first
        since = datetime.now(UTC) - timedelta(days=days)
        selection = _selection(compiled, since)
        where, args = selection.where, selection.args
        async with self.runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # Notices stored before the read model kept every value the rules read are matched one by one.
            considered, older = await conn.fetchrow(
                """SELECT count(*), count(*) FILTER (WHERE matching_columns IS NULL)
                   FROM notices WHERE listed_at >= $1""",
                since,
            )
            if selection.exact and not older:
                # SQL counts; only the sample is read and matched, for its reasons.
                matched = await conn.fetchval(f"SELECT count(*) FROM notices WHERE {where}", *args)
                rows = await conn.fetch(
                    f"SELECT document, listed_at FROM notices WHERE {where} ORDER BY listed_at DESC, notice_id "
                    f"LIMIT {sample:d}",
                    *args,
                )
                found, shown = await asyncio.to_thread(_match_chunk, compiled, rows, sample)
                if found == len(rows):
                    return {"days": days, "notices_considered": considered, "matches": matched, "sample": shown}
                _log.error("preview: the SQL selection and the matching rules disagree; matching every notice")
            matched = 0
            shown = []
            cursor = await conn.cursor(
                f"SELECT document, listed_at FROM notices WHERE {where} ORDER BY listed_at DESC, notice_id", *args
            )
            while rows := await cursor.fetch(_PREVIEW_CHUNK):
                found, items = await asyncio.to_thread(_match_chunk, compiled, rows, sample - len(shown))
                matched += found
                shown += items
        return {"days": days, "notices_considered": considered, "matches": matched, "sample": shown}

    # --- HTTP -----------------------------------------------------------------------------------------

    def asgi(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            async with self.runtime.lifespan():
                yield

        app = FastAPI(
            title="tenderwatch API",
            version="0.1.0",
            description="Public-procurement alerts: subscriptions, webhook endpoints, notices.",
            lifespan=lifespan,
        )
        for route in self.runtime.health_routes():
            app.router.routes.append(route)
        app.state.api = self
        app.include_router(unsubscribe.router(self.settings, self.runtime))  # the links in every alert email

        @app.post("/v1/accounts", status_code=201)
        async def create_account(body: AccountIn) -> dict[str, str]:
            account = keys.new_id("acc")
            issued = keys.issue_api_key()
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO accounts (account_id, name, email) VALUES ($1, $2, $3)", account, body.name, body.email
                )
                await conn.execute(
                    "INSERT INTO api_keys (key_id, account_id, key_hash) VALUES ($1, $2, $3)",
                    issued.key_id,
                    account,
                    issued.key_hash,
                )
            _log.info("account created", extra={"account_id": account})
            return {"id": account, "name": body.name, "email": body.email, "api_key": issued.api_key}

        @app.post("/v1/api-keys", status_code=201)
        async def issue_api_key(owner: Account) -> dict[str, Any]:
            """A new key for the caller's account, shown once: for rotating keys without a gap."""
            issued = keys.issue_api_key()
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE", owner)
                active = await conn.fetchval(
                    "SELECT count(*) FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL", owner
                )
                if active >= _MAX_ACTIVE_API_KEYS:
                    raise HTTPException(
                        409, f"the account has {active} active API keys, the most it may hold: revoke one first"
                    )
                created_at = await conn.fetchval(
                    "INSERT INTO api_keys (key_id, account_id, key_hash) VALUES ($1, $2, $3) RETURNING created_at",
                    issued.key_id,
                    owner,
                    issued.key_hash,
                )
            _log.info("api key issued", extra={"account_id": owner, "key_id": issued.key_id})
            return {"id": issued.key_id, "api_key": issued.api_key, "created_at": created_at.isoformat()}

        @app.get("/v1/api-keys")
        async def list_api_keys(owner: Account) -> list[dict[str, Any]]:
            """The account's keys, revoked ones included, without their secrets (only their hashes are kept), each
            with when it last authenticated a call (to within `_KEY_USE_RECORDED_EVERY`; null: never)."""
            rows = await self.runtime.pool.fetch(
                """SELECT key_id, created_at, revoked_at, last_used_at FROM api_keys
                   WHERE account_id = $1 ORDER BY created_at, key_id""",
                owner,
            )
            return [
                {"id": row["key_id"]}
                | {name: None if row[name] is None else row[name].isoformat() for name in _API_KEY_DATES}
                for row in rows
            ]

        @app.delete("/v1/api-keys/{key_id}", status_code=204)
        async def revoke_api_key(key_id: str, owner: Account) -> Response:
            """Revoke one of the account's keys, effective at once; never its last active one."""
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE", owner)
                key = await conn.fetchrow(
                    "SELECT revoked_at FROM api_keys WHERE key_id = $1 AND account_id = $2", key_id, owner
                )
                if key is None:
                    raise HTTPException(404, f"API key {key_id!r} not found")
                if key["revoked_at"] is None:  # revoking a revoked key again changes nothing
                    others = await conn.fetchval(
                        """SELECT count(*) FROM api_keys
                           WHERE account_id = $1 AND revoked_at IS NULL AND key_id <> $2""",
                        owner,
                        key_id,
                    )
                    if not others:
                        raise HTTPException(
                            409, "this is the account's last active API key: issue a new one (POST /v1/api-keys) first"
                        )
                    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", key_id)
                    _log.info("api key revoked", extra={"account_id": owner, "key_id": key_id})
            return Response(status_code=204)

        @app.post("/v1/webhook-endpoints", status_code=201)
        async def create_endpoint(body: WebhookEndpointIn, owner: Account) -> dict[str, Any]:
            await _check_webhook_destination(body.url, self.settings)
            endpoint = WebhookEndpoint(
                endpoint_id=keys.new_id("we"),
                subscriber_id=owner,
                url=body.url,
                secret=keys.new_webhook_secret(),
                owner_email=await self.runtime.pool.fetchval("SELECT email FROM accounts WHERE account_id = $1", owner),
                updated_at=datetime.now(UTC),
            )
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """INSERT INTO webhook_endpoints (endpoint_id, account_id, url, secret, created_at, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $5)""",
                    endpoint.endpoint_id,
                    owner,
                    endpoint.url,
                    endpoint.secret,
                    endpoint.updated_at,
                )
                await outbox.add(
                    conn,
                    topic=Topic.WEBHOOK_ENDPOINTS_CHANGES.value,
                    key=endpoint.endpoint_id,
                    value=endpoint.model_dump_json().encode(),
                )
            return {
                "id": endpoint.endpoint_id,
                "url": endpoint.url,
                "secret": endpoint.secret,
                "active": True,
                "created_at": endpoint.updated_at.isoformat(),
            }

        @app.get("/v1/webhook-endpoints")
        async def list_endpoints(owner: Account) -> list[dict[str, Any]]:
            rows = await self.runtime.pool.fetch(
                """SELECT endpoint_id, url, active, created_at FROM webhook_endpoints
                   WHERE account_id = $1 ORDER BY created_at""",
                owner,
            )
            return [
                {"id": r["endpoint_id"], "url": r["url"], "active": r["active"], "created_at": r["created_at"]}
                for r in rows
            ]

        @app.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
        async def rotate_endpoint_secret(endpoint_id: str, owner: Account) -> dict[str, Any]:
            """A new secret, shown once; the replaced one keeps signing too (two signatures) until the overlap ends."""
            secret = keys.new_webhook_secret()
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                previous = await conn.fetchrow(
                    """SELECT e.secret, a.email FROM webhook_endpoints e JOIN accounts a USING (account_id)
                       WHERE e.endpoint_id = $1 AND e.account_id = $2 FOR UPDATE OF e""",
                    endpoint_id,
                    owner,
                )
                if previous is None:
                    raise HTTPException(404, f"webhook endpoint {endpoint_id!r} not found")
                # Strictly later than the last change: the notifier keeps only a newer one.
                row = await conn.fetchrow(
                    """UPDATE webhook_endpoints SET secret = $2,
                              updated_at = greatest(now(), updated_at + interval '1 millisecond')
                       WHERE endpoint_id = $1 RETURNING url, active, updated_at""",
                    endpoint_id,
                    secret,
                )
                endpoint = WebhookEndpoint(
                    endpoint_id=endpoint_id,
                    subscriber_id=owner,
                    url=row["url"],
                    secret=secret,
                    previous_secret=previous["secret"],
                    previous_secret_expires_at=row["updated_at"] + self.settings.webhook_secret_overlap,
                    owner_email=previous["email"],
                    active=row["active"],
                    updated_at=row["updated_at"],
                )
                await outbox.add(
                    conn,
                    topic=Topic.WEBHOOK_ENDPOINTS_CHANGES.value,
                    key=endpoint_id,
                    value=endpoint.model_dump_json().encode(),
                )
            _log.info("webhook secret rotated", extra={"endpoint_id": endpoint_id})
            assert endpoint.previous_secret_expires_at is not None
            return {
                "id": endpoint_id,
                "secret": secret,
                "previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat(),
            }

        @app.get("/v1/webhook-endpoints/{endpoint_id}/deliveries")
        async def list_endpoint_deliveries(
            endpoint_id: str, owner: Account, limit: int = 20, before: datetime | None = None
        ) -> dict[str, Any]:
            """The endpoint's deliveries, newest first, each with its attempts; `before` pages back by creation time."""
            if not 1 <= limit <= 100:
                raise HTTPException(422, "limit must be between 1 and 100")
            if before is not None and before.tzinfo is None:
                raise HTTPException(422, "before must carry a time zone offset, e.g. 2026-01-31T08:00:00Z")
            await _own_endpoint(self.runtime.pool, endpoint_id, owner)
            params = {"subscriber_id": owner, "limit": str(limit)}
            if before is not None:
                params["before"] = before.isoformat()
            answer = await _ask_notifier(self.settings, "GET", f"{_endpoint_path(endpoint_id)}/deliveries", params)
            if answer.status_code != 200:
                raise HTTPException(502, f"the notifier answered {answer.status_code}")
            found: dict[str, Any] = answer.json()
            return found

        @app.post("/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay", status_code=202)
        async def replay_endpoint_delivery(endpoint_id: str, delivery_id: str, owner: Account) -> dict[str, Any]:
            """Send a delivery again, with the same webhook-id and body (a new attempt, newly signed)."""
            await _own_endpoint(self.runtime.pool, endpoint_id, owner)
            path = f"{_endpoint_path(endpoint_id)}/deliveries/{quote(delivery_id, safe='')}/replay"
            answer = await _ask_notifier(self.settings, "POST", path, {"subscriber_id": owner})
            result = answer.json().get("result") if answer.status_code in (202, 404, 409) else None
            if result == "not_found":
                raise HTTPException(404, f"delivery {delivery_id!r} not found for webhook endpoint {endpoint_id!r}")
            if result == "in_progress":
                raise HTTPException(409, "the delivery is not settled yet: it is being sent or waits for its next try")
            if result == "endpoint_disabled":
                raise HTTPException(409, "the endpoint is disabled: rotate its secret to turn it back on, then replay")
            if result != "queued":
                raise HTTPException(502, f"the notifier answered {answer.status_code}")
            return {"delivery_id": delivery_id, "status": "queued"}

        @app.post("/v1/subscriptions", status_code=201)
        async def create_subscription(body: SubscriptionIn, owner: Account) -> dict[str, Any]:
            self.check_filters(body.filters)
            endpoint_id = body.delivery.webhook_endpoint_id
            now = datetime.now(UTC)
            subscription = Subscription(
                subscription_id=keys.new_id("sub"),
                subscriber_id=owner,
                name=body.name,
                filters=body.filters,
                delivery=body.delivery,
                active=body.active,
                created_at=now,
                updated_at=now,
            )
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                if endpoint_id is not None:
                    known = await conn.fetchval(
                        "SELECT true FROM webhook_endpoints WHERE endpoint_id = $1 AND account_id = $2",
                        endpoint_id,
                        owner,
                    )
                    if not known:
                        # Same answer for another account's endpoint: its existence is not disclosed.
                        raise HTTPException(422, f"webhook endpoint {endpoint_id!r} not found in your account")
                await conn.execute(
                    """INSERT INTO subscriptions (subscription_id, account_id, name, filters, delivery, active,
                                                  created_at, updated_at)
                       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $7)""",
                    subscription.subscription_id,
                    owner,
                    subscription.name,
                    subscription.filters.model_dump_json(),
                    subscription.delivery.model_dump_json(),
                    subscription.active,
                    now,
                )
                await outbox.add(
                    conn,
                    topic=Topic.SUBSCRIPTIONS_CHANGES.value,
                    key=subscription.subscription_id,
                    value=SubscriptionChange(subscription=subscription).model_dump_json().encode(),
                )
            return _subscription_out(subscription)

        @app.post("/v1/subscriptions/preview")
        async def preview_subscription(body: PreviewIn, _owner: Account) -> dict[str, Any]:
            """What these filters would have matched over the last `days` days of notices; nothing is stored."""
            self.check_filters(body.filters)
            return await self.preview(body.filters, days=body.days, sample=body.sample)

        @app.get("/v1/subscriptions")
        async def list_subscriptions(owner: Account) -> list[dict[str, Any]]:
            rows = await self.runtime.pool.fetch(
                "SELECT * FROM subscriptions WHERE account_id = $1 ORDER BY created_at", owner
            )
            return [_subscription_out(subscription_from_row(r)) for r in rows]

        @app.get("/v1/subscriptions/{subscription_id}")
        async def get_subscription(subscription_id: str, owner: Account) -> dict[str, Any]:
            row = await self.runtime.pool.fetchrow(
                "SELECT * FROM subscriptions WHERE subscription_id = $1 AND account_id = $2", subscription_id, owner
            )
            if row is None:
                raise HTTPException(404, f"subscription {subscription_id!r} not found")
            return _subscription_out(subscription_from_row(row))

        @app.delete("/v1/subscriptions/{subscription_id}", status_code=204)
        async def delete_subscription(subscription_id: str, owner: Account) -> Response:
            async with self.runtime.pool.acquire() as conn, conn.transaction():
                deleted = await conn.fetchval(
                    "DELETE FROM subscriptions WHERE subscription_id = $1 AND account_id = $2 RETURNING true",
                    subscription_id,
                    owner,
                )
                if not deleted:
                    raise HTTPException(404, f"subscription {subscription_id!r} not found")
                await outbox.add(conn, topic=Topic.SUBSCRIPTIONS_CHANGES.value, key=subscription_id, value=None)
            return Response(status_code=204)

        @app.put("/v1/admin/accounts/{account}/publisher", status_code=204, dependencies=[Operator])
        async def grant_publisher(account: str) -> Response:
            return await set_publisher(account, True)

        @app.delete("/v1/admin/accounts/{account}/publisher", status_code=204, dependencies=[Operator])
        async def revoke_publisher(account: str) -> Response:
            return await set_publisher(account, False)

        async def set_publisher(account: str, allowed: bool) -> Response:
            updated = await self.runtime.pool.fetchval(
                "UPDATE accounts SET can_publish = $2 WHERE account_id = $1 RETURNING true", account, allowed
            )
            if not updated:
                raise HTTPException(404, f"account {account!r} not found")
            _log.info("publisher right changed", extra={"account_id": account, "can_publish": allowed})
            return Response(status_code=204)

        @app.post("/v1/notices", status_code=202)
        async def publish_notice(request: Request, owner: Account) -> JSONResponse:
            if not self.settings.publish_open_to_all:
                allowed = await self.runtime.pool.fetchval(
                    "SELECT can_publish FROM accounts WHERE account_id = $1", owner
                )
                if not allowed:
                    raise HTTPException(
                        403, "this account may not publish notices: ask an operator to grant it the publisher right"
                    )
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in _DOCUMENT_TYPES:
                raise HTTPException(
                    415,
                    f"'{content_type}' is not a document type: send eForms or BOAMP XML (application/xml), OCDS, "
                    "BOAMP or canonical JSON (application/json), or a purchase plan (text/csv)",
                )
            limit = self.settings.max_document_bytes
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise HTTPException(413, f"the document exceeds the limit of {limit} bytes")
            assert self._ingest is not None
            forwarded = {"content-type": content_type, "x-origin": f"api:{owner}"}
            if trace := request.headers.get(correlation.HTTP_HEADER):  # ingest checks it, or gives a new one
                forwarded[correlation.HTTP_HEADER] = trace
            try:
                answer = await self._ingest.post("/v1/documents", content=bytes(body), headers=forwarded)
            except httpx.HTTPError as exc:
                _log.warning("ingest unreachable", extra={"error": str(exc)})
                raise HTTPException(503, "the ingest service is unavailable; retry in a moment") from None
            payload = answer.json()
            if answer.status_code == 202:
                headers = {}
                if trace := answer.headers.get(correlation.HTTP_HEADER):
                    headers[correlation.HTTP_HEADER] = trace
                if "notice_id" in payload:
                    headers["Location"] = f"/v1/notices/{quote(payload['notice_id'], safe=':')}"
                return JSONResponse(payload, status_code=202, headers=headers)
            if answer.status_code in (413, 422):
                raise HTTPException(answer.status_code, f"{payload['error']}: {payload['detail']}")
            raise HTTPException(502, f"the ingest service answered {answer.status_code}")

        @app.get("/v1/notices/{notice_id}")
        async def get_notice(notice_id: str, _owner: Account) -> Response:
            document = await self.runtime.pool.fetchval("SELECT document FROM notices WHERE notice_id = $1", notice_id)
            if document is None:
                raise HTTPException(404, f"notice {notice_id!r} not found (or not classified yet)")
            return Response(document, media_type="application/json")

        return app


async def _check_webhook_destination(url: str, settings: Settings) -> None:
    """422 unless `url` may receive webhooks: https, and a host that resolves to public addresses only."""
    try:
        await check_webhook_destination(url, allow_private=settings.webhook_allow_private)
    except UnsafeUrlError as exc:
        raise HTTPException(422, f"webhook url refused: {exc}") from None
    except OSError as exc:
        raise HTTPException(422, f"webhook url refused: its host does not resolve ({exc})") from None


async def _own_endpoint(pool: asyncpg.Pool, endpoint_id: str, owner: str) -> None:
    """404 unless the endpoint is the caller's: another account's endpoint is not disclosed."""
    if not await pool.fetchval(
        "SELECT true FROM webhook_endpoints WHERE endpoint_id = $1 AND account_id = $2", endpoint_id, owner
    ):
        raise HTTPException(404, f"webhook endpoint {endpoint_id!r} not found")


def _endpoint_path(endpoint_id: str) -> str:
    return f"/internal/webhook-endpoints/{quote(endpoint_id, safe='')}"


async def _ask_notifier(settings: Settings, method: str, path: str, params: dict[str, str]) -> httpx.Response:
    """The notifier keeps webhook deliveries in its own schema and answers for them on its internal routes."""
    try:
        async with httpx.AsyncClient(base_url=settings.notifier_url, timeout=10.0, trust_env=False) as client:
            return await client.request(method, path, params=params)
    except httpx.HTTPError as exc:
        _log.warning("notifier unreachable", extra={"error": str(exc)})
        raise HTTPException(503, "the notifier is unavailable; retry in a moment") from None


@dataclass(frozen=True)
class _Selection:
    """The SQL condition for the notices of a preview's window that can match, and its arguments.

    Each condition is necessary for `reasons` to match, read from the values the rules read, which the read model
    keeps as `NoticeView` computes them. When `exact`, the condition holds on exactly the notices `reasons`
    matches, among those stored with every such value (`matching_columns`): the keyword query, if any, is clauses
    of single words (`query.as_clauses`); phrases and other shapes need the matching rules.
    """

    where: str
    args: list[Any]
    exact: bool


def _selection(compiled: CompiledFilters, since: datetime) -> _Selection:
    conditions: list[str] = ["listed_at >= $1"]
    # On the columns a row stored before `matching_columns` may lack: such a row passes, and the rules decide it.
    later: list[str] = []
    args: list[Any] = [since]

    def argument(values: Iterable[str]) -> str:
        args.append(sorted(values))
        return f"${len(args)}::text[]"

    def parameter(value: Any, cast: str) -> str:
        args.append(value)
        return f"${len(args)}::{cast}"

    if compiled.kinds:
        conditions.append(f"kind = ANY({argument(compiled.kinds)})")
    for column, values in (
        ("departments", compiled.departments),
        ("regions", compiled.regions),
        ("sectors", compiled.sectors),
    ):
        if values:
            conditions.append(f"{column} && {argument(values)}")
    for column, wanted in (
        ("cpv_prefixes", [prefix for _code, prefix in compiled.cpv]),
        ("countries", compiled.countries),
        ("buyer_keys", [key for _value, key in compiled.buyers]),
    ):
        if wanted:
            later.append(f"{column} && {argument(wanted)}")
    for column, wanted in (("buyer_category", compiled.buyer_categories), ("procedure", compiled.procedure_types)):
        if wanted:
            later.append(f"{column} = ANY({argument(wanted)})")
    for column, flag in (("sme_suitable", compiled.sme_suitable), ("reserved", compiled.reserved)):
        if flag is not None:
            later.append(f"{column} = {parameter(flag, 'text')}")
    if compiled.value_min is not None or compiled.value_max is not None:
        bounds = ["value_eur IS NOT NULL"]
        if compiled.value_min is not None:
            bounds.append(f"value_eur >= {parameter(compiled.value_min, 'numeric')}")
        if compiled.value_max is not None:
            bounds.append(f"value_eur <= {parameter(compiled.value_max, 'numeric')}")
        without = "value_eur IS NULL" if compiled.without_value is WithoutValue.INCLUDE else "false"
        later.append(f"({without} OR ({' AND '.join(bounds)}))")
    if compiled.min_days_left is not None:
        # As `reasons` counts them: from when the notice was listed, a notice without a deadline passing.
        days = parameter(compiled.min_days_left, "int")
        later.append(f"(deadline IS NULL OR deadline - listed_at >= make_interval(days => {days}))")
    exact = True
    if compiled.query is not None:
        clauses = as_clauses(compiled.query)
        mark = TITLE_MARK if compiled.title_only else ""
        terms = [] if clauses is None else [*(t for clause in clauses.required for t in clause), *clauses.excluded]
        if clauses is not None and all(len(term.tokens) == 1 for term in terms):
            # A single word is found exactly when it is among the notice's search tokens.
            def words(terms: Iterable[Term]) -> str:
                return argument({mark + term.tokens[0] for term in terms})

            later += [f"search_tokens && {words(clause)}" for clause in clauses.required]
            if clauses.excluded:
                later.append(f"NOT (search_tokens && {words(clauses.excluded)})")
        else:
            exact = False  # phrases, or a shape the clauses cannot say: `reasons` decides
            if keys := query_search_keys(compiled):
                later.append(f"search_tokens && {argument(keys)}")
    conditions += [f"(matching_columns IS NULL OR {condition})" for condition in later]
    return _Selection(" AND ".join(conditions), args, exact)


def _match_chunk(compiled: CompiledFilters, rows: list[asyncpg.Record], room: int) -> tuple[int, list[dict[str, Any]]]:
    """How many of `rows` match, and the first `room` of them as sample items. CPU only: run off the event loop."""
    matched = 0
    items: list[dict[str, Any]] = []
    for row in rows:
        notice = ClassifiedNotice.model_validate_json(row["document"])
        why = reasons(compiled, NoticeView.of(notice, text=compiled.query is not None), row["listed_at"])
        if why is None:
            continue
        matched += 1
        if len(items) < room:
            items.append(_preview_item(notice, why))
    return matched, items


def _preview_item(notice: ClassifiedNotice, why: tuple[MatchReason, ...]) -> dict[str, Any]:
    return {
        "notice_id": notice.notice_id,
        "title": notice.title,
        "buyer_name": notice.buyer.name,
        "kind": notice.kind.value,
        "published_at": None if notice.published_at is None else notice.published_at.isoformat(),
        "deadline": None if notice.deadline is None else notice.deadline.isoformat(),
        "departments": notice.departments,
        "reasons": [reason.model_dump(mode="json") for reason in why],
    }


def _subscription_out(subscription: Subscription) -> dict[str, Any]:
    out = subscription.model_dump(mode="json", exclude={"schema_version", "subscription_id", "subscriber_id"})
    return {"id": subscription.subscription_id, **out}
