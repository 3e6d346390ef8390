"""`/v1/api-keys`: an account issues, lists and revokes its own API keys, on the real database."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from services.api.app import Api
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    started = Api(settings)
    async with started.runtime.lifespan():
        yield started


@pytest_asyncio.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.asgi()), base_url="http://api.test") as http:
        yield http


async def _account(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
    created = await client.post("/v1/accounts", json={"name": name, "email": f"{name}@dupont.example"})
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["api_key"]


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_key_is_rotated_without_a_gap_and_the_old_one_stops_at_once(client: httpx.AsyncClient) -> None:
    _account_id, first = await _account(client, "rotation")
    issued = await client.post("/v1/api-keys", headers=_auth(first))
    assert issued.status_code == 201, issued.text
    second = issued.json()["api_key"]
    assert second.startswith(f"tw_{issued.json()['id']}_") and second != first
    # Both work until the old one is revoked.
    for key in (first, second):
        assert (await client.get("/v1/subscriptions", headers=_auth(key))).status_code == 200
    first_id = first.split("_")[1]
    listed = (await client.get("/v1/api-keys", headers=_auth(second))).json()
    assert [(k["id"], k["revoked_at"]) for k in listed] == [(first_id, None), (issued.json()["id"], None)]
    assert all(set(k) == {"id", "created_at", "revoked_at", "last_used_at"} for k in listed)  # no secret nor hash

    revoked = await client.delete(f"/v1/api-keys/{first_id}", headers=_auth(second))
    assert revoked.status_code == 204
    refused = await client.get("/v1/subscriptions", headers=_auth(first))
    assert refused.status_code == 401
    assert (await client.get("/v1/subscriptions", headers=_auth(second))).status_code == 200
    listed = (await client.get("/v1/api-keys", headers=_auth(second))).json()
    assert listed[0]["id"] == first_id and listed[0]["revoked_at"] is not None
    again = await client.delete(f"/v1/api-keys/{first_id}", headers=_auth(second))
    assert again.status_code == 204  # revoking a revoked key changes nothing


async def test_the_last_active_key_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    _account_id, only = await _account(client, "seule")
    answer = await client.delete(f"/v1/api-keys/{only.split('_')[1]}", headers=_auth(only))
    assert answer.status_code == 409
    assert "last active API key" in answer.json()["detail"] and "POST /v1/api-keys" in answer.json()["detail"]
    assert (await client.get("/v1/subscriptions", headers=_auth(only))).status_code == 200


async def test_an_account_never_sees_nor_revokes_another_accounts_keys(client: httpx.AsyncClient) -> None:
    _dupont, dupont_key = await _account(client, "dupont")
    _martin, martin_key = await _account(client, "martin")
    await client.post("/v1/api-keys", headers=_auth(martin_key))  # martin has two: the last-key rule is not what stops
    martin_id = martin_key.split("_")[1]
    listed = (await client.get("/v1/api-keys", headers=_auth(dupont_key))).json()
    assert [k["id"] for k in listed] == [dupont_key.split("_")[1]]
    answer = await client.delete(f"/v1/api-keys/{martin_id}", headers=_auth(dupont_key))
    assert answer.status_code == 404
    assert (await client.get("/v1/subscriptions", headers=_auth(martin_key))).status_code == 200


async def test_keys_are_stored_hashed_and_an_account_holds_at_most_ten(client: httpx.AsyncClient, api: Api) -> None:
    account_id, key = await _account(client, "plafond")
    issued = [(await client.post("/v1/api-keys", headers=_auth(key))) for _ in range(9)]
    assert [answer.status_code for answer in issued] == [201] * 9
    refused = await client.post("/v1/api-keys", headers=_auth(key))
    assert refused.status_code == 409 and "revoke one first" in refused.json()["detail"]
    stored = await api.runtime.pool.fetch("SELECT key_id, key_hash FROM api_keys WHERE account_id = $1", account_id)
    assert len(stored) == 10
    last = issued[-1].json()
    secret = last["api_key"].split("_", 2)[2]
    assert {row["key_id"]: row["key_hash"] for row in stored}[last["id"]] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in row["key_hash"] for row in stored)
    unauthenticated = await client.post("/v1/api-keys")
    assert unauthenticated.status_code == 401


async def test_each_key_shows_when_it_last_authenticated_a_call(client: httpx.AsyncClient, api: Api) -> None:
    _account_id, first = await _account(client, "usage")
    issued = (await client.post("/v1/api-keys", headers=_auth(first))).json()
    first_id, unused_id = first.split("_")[1], issued["id"]
    before = datetime.now(UTC)
    listed = {k["id"]: k for k in (await client.get("/v1/api-keys", headers=_auth(first))).json()}
    assert listed[unused_id]["last_used_at"] is None  # issued, never sent
    used_at = datetime.fromisoformat(listed[first_id]["last_used_at"])
    assert before - timedelta(minutes=1) < used_at <= datetime.now(UTC)

    # Within the recording window another call writes nothing: the date is the window's first call.
    await client.get("/v1/subscriptions", headers=_auth(first))
    stored = await api.runtime.pool.fetchval("SELECT last_used_at FROM api_keys WHERE key_id = $1", first_id)
    assert stored == used_at

    # Past the window, the next call moves it.
    old = datetime.now(UTC) - timedelta(hours=3)
    await api.runtime.pool.execute("UPDATE api_keys SET last_used_at = $2 WHERE key_id = $1", first_id, old)
    await client.get("/v1/subscriptions", headers=_auth(first))
    stored = await api.runtime.pool.fetchval("SELECT last_used_at FROM api_keys WHERE key_id = $1", first_id)
    assert stored > old + timedelta(hours=2)

    # A refused call (wrong secret for a real key id) is not a use.
    forged = f"tw_{unused_id}_not-the-secret"
    assert (await client.get("/v1/subscriptions", headers=_auth(forged))).status_code == 401
    assert await api.runtime.pool.fetchval("SELECT last_used_at FROM api_keys WHERE key_id = $1", unused_id) is None
