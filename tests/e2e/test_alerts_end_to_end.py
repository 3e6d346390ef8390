"""The platform as separate processes on a real broker and database, with a real SMTP server and HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import Delivery, Match, Topic
from services.ingest.sources import parse_document
from services.notifier.webhooks.signing import verify
from tests.e2e.conftest import OPERATOR_TOKEN, RunningPlatform

pytestmark = pytest.mark.e2e

TED = Path(__file__).parents[1] / "fixtures" / "eforms" / "ted"
# A real French call for tender: glass and paper collection, Communauté de Communes du Piémont Cévenol (Gard).
PIEMONT = TED / "2024-OJS017-00047522.xml"
PIEMONT_TITLE = "Prestations de collecte des colonnes de verre et de papier"
PIEMONT_BUYER = "Communauté de Communes du Piémont Cévenol"

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 60.0, what: str) -> T:
    """Poll `probe` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def new_account(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post("/v1/accounts", json={"name": name, "email": f"{name.lower()}@example.org"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_publisher(client: httpx.Client, name: str) -> dict[str, Any]:
    """An account an operator granted the publisher right."""
    account = new_account(client, name)
    granted = client.put(
        f"/v1/admin/accounts/{account['id']}/publisher", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert granted.status_code == 204, granted.text
    return account


def auth(account: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {account['api_key']}"}


def matcher_count(running: RunningPlatform) -> int:
    stats = httpx.get(f"{running.platform.url('matcher')}/v1/index").json()
    return int(stats["subscriptions"]) if stats["ready"] else -1


def read_topic(env: dict[str, str], topic: str, *, timeout: float = 8.0) -> list[Any]:
    """Every record of a topic from the beginning (bounded)."""

    async def _read() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        records: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
                if records and not batch:
                    break
        finally:
            await consumer.stop()
        return records

    return asyncio.run(_read())


@pytest.fixture(scope="module")
def client(running: RunningPlatform) -> httpx.Client:
    return httpx.Client(base_url=running.api, timeout=30.0)


def test_a_real_french_notice_reaches_email_and_signed_webhook(running: RunningPlatform, client: httpx.Client) -> None:
    account = new_publisher(client, "Collecte")
    before = matcher_count(running)
    endpoint = client.post(
        "/v1/webhook-endpoints", json={"url": f"{running.hooks.url}/hooks/collecte"}, headers=auth(account)
    )
    assert endpoint.status_code == 201, endpoint.text
    secret = endpoint.json()["secret"]
    assert secret.startswith("whsec_")
    subscription = client.post(
        "/v1/subscriptions",
        json={
            "name": "Collecte des déchets dans le Gard",
            "filters": {"kinds": ["competition"], "cpv": ["90500000"], "departments": ["30"]},
            "delivery": {"email": "collecte@example.org", "webhook_endpoint_id": endpoint.json()["id"]},
        },
        headers=auth(account),
    )
    assert subscription.status_code == 201, subscription.text
    eventually(lambda: matcher_count(running) == before + 1, what="the matcher to hold the subscription")

    posted = client.post(
        "/v1/notices",
        content=PIEMONT.read_bytes(),
        headers={**auth(account), "content-type": "application/xml"},
    )
    assert posted.status_code == 202, posted.text
    notice_id = posted.json()["notice_id"]
    assert notice_id.startswith("eforms:")

    mail = eventually(
        lambda: next((m for m in running.mail.messages() if "collecte@example.org" in m.recipients), None),
        what="an email to collecte@example.org",
    )
    message = mail.message()
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert PIEMONT_TITLE in text
    assert PIEMONT_BUYER in text
    assert PIEMONT_TITLE in html
    assert PIEMONT_TITLE[:40] in message["subject"]
    assert message["auto-submitted"] == "auto-generated"

    request = eventually(
        lambda: next((r for r in running.hooks.requests() if r.path == "/hooks/collecte"), None),
        what="a webhook on /hooks/collecte",
    )
    verify(secret, request.headers, request.body, now=int(time.time()))
    with pytest.raises(Exception):  # noqa: B017 - any signature error: the body was tampered with
        verify(secret, request.headers, request.body + b" ", now=int(time.time()))
    payload = json.loads(request.body)
    assert payload["data"]["notice"]["notice_id"] == notice_id
    assert payload["data"]["notice"]["title"].startswith(PIEMONT_TITLE)

    def delivered() -> set[tuple[str, str]] | None:
        events = [
            Delivery.model_validate_json(r.value) for r in read_topic(running.platform.env, Topic.ALERTS_DELIVERED)
        ]
        mine = {(e.channel.value, e.status.value) for e in events if e.notice_id == notice_id}
        return mine if len(mine) >= 2 else None

    assert eventually(delivered, what="both deliveries on alerts.delivered") == {("email", "sent"), ("webhook", "sent")}

    notice = client.get(f"/v1/notices/{notice_id}", headers=auth(account))
    assert notice.status_code == 200, notice.text
    assert notice.json()["departments"] == ["30"]
    assert notice.json()["regions"] == ["76"]

    # Posting the same notice again neither publishes it again nor sends a second alert.
    again = client.post(
        "/v1/notices", content=PIEMONT.read_bytes(), headers={**auth(account), "content-type": "application/xml"}
    )
    assert again.status_code == 202 and again.json()["duplicate"] is True
    time.sleep(2)
    assert sum("collecte@example.org" in m.recipients for m in running.mail.messages()) == 1

    # The same notice changed without a new revision number is a new version: published, alerted again.
    changed = PIEMONT.read_bytes().replace(b"collecte des colonnes", b"collecte des bornes")
    revised = client.post("/v1/notices", content=changed, headers={**auth(account), "content-type": "application/xml"})
    assert revised.status_code == 202, revised.text
    assert revised.json()["notice_id"] == notice_id
    assert revised.json()["duplicate"] is False
    assert revised.json()["version"].startswith("01~")
    eventually(
        lambda: sum("collecte@example.org" in m.recipients for m in running.mail.messages()) == 2,
        what="an alert for the new version",
    )
    assert "bornes" in client.get(f"/v1/notices/{notice_id}", headers=auth(account)).json()["title"]

    # Deleting the subscription reaches the matcher as a tombstone.
    deleted = client.delete(f"/v1/subscriptions/{subscription.json()['id']}", headers=auth(account))
    assert deleted.status_code == 204
    assert client.get(f"/v1/subscriptions/{subscription.json()['id']}", headers=auth(account)).status_code == 404
    eventually(lambda: matcher_count(running) == before, what="the matcher to forget the deleted subscription")


def test_a_notice_that_matches_nothing_yields_no_alert(running: RunningPlatform, client: httpx.Client) -> None:
    account = new_publisher(client, "Corse")
    before = matcher_count(running)
    response = client.post(
        "/v1/subscriptions",
        json={
            "name": "Travaux en Corse-du-Sud",
            "filters": {"cpv": ["45000000"], "departments": ["2A"]},
            "delivery": {"email": "corse@example.org"},
        },
        headers=auth(account),
    )
    assert response.status_code == 201, response.text
    eventually(lambda: matcher_count(running) == before + 1, what="the matcher to hold the subscription")
    polish = TED / "2024-OJS044-00128154.xml"  # car leasing in Poland
    posted = client.post(
        "/v1/notices", content=polish.read_bytes(), headers={**auth(account), "content-type": "application/xml"}
    )
    assert posted.status_code == 202, posted.text
    notice_id = posted.json()["notice_id"]
    eventually(
        lambda: client.get(f"/v1/notices/{notice_id}", headers=auth(account)).status_code == 200,
        what="the notice to be classified",
    )
    time.sleep(3)  # leave the matcher and notifier time to (wrongly) alert
    matched = [Match.model_validate_json(r.value) for r in read_topic(running.platform.env, Topic.ALERTS_MATCHED)]
    assert notice_id not in {m.notice.notice_id for m in matched}
    assert not [m for m in running.mail.messages() if "corse@example.org" in m.recipients]


def test_malformed_xml_posted_to_the_api_gets_a_clear_4xx(running: RunningPlatform, client: httpx.Client) -> None:
    account = new_publisher(client, "Malformed")
    response = client.post(
        "/v1/notices",
        content=b"<?xml version='1.0'?>\n<ContractNotice>\n  <cbc:ID>unterminated\n",
        headers={**auth(account), "content-type": "application/xml"},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "malformed-xml" in detail
    assert "line" in detail

    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    response = client.post("/v1/notices", content=xxe, headers={**auth(account), "content-type": "application/xml"})
    assert response.status_code == 422
    assert "doctype-forbidden" in response.json()["detail"]
    assert "root:" not in response.text

    response = client.post("/v1/notices", content=b"{}", headers={**auth(account), "content-type": "application/json"})
    assert response.status_code == 422
    assert "unknown-format" in response.json()["detail"]
    response = client.post("/v1/notices", content=b"GIF89a", headers={**auth(account), "content-type": "image/gif"})
    assert response.status_code == 415

    oversized = b"<?xml version='1.0'?><r>" + b"x" * (5 * 1024 * 1024) + b"</r>"
    response = client.post("/v1/notices", content=oversized, headers={**auth(account), "content-type": "text/xml"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_import_reports_each_file_dead_letters_the_broken_one_and_the_pipeline_keeps_working(
    running: RunningPlatform, client: httpx.Client, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    bad = folder / "broken-notice.xml"
    bad.write_bytes(b"<?xml version='1.0'?><ContractNotice><cbc:ID>oops</ContractNotice")
    good = TED / "2024-OJS074-00219998.xml"
    (folder / good.name).write_bytes(good.read_bytes())
    (folder / "notes.txt").write_text("not a document: skipped")
    done = subprocess.run(
        [sys.executable, "-m", "services.platform.cli", "import", str(folder), str(PIEMONT)],
        env=running.platform.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # a file was rejected
    assert "3 file(s): 1 notice(s) imported, 1 duplicate(s)" in done.stdout  # Piémont came in an earlier test
    assert f"rejected {bad}: malformed-xml" in done.stdout
    assert "rejected by reason: malformed-xml 1" in done.stdout

    def dead_letter() -> Any:
        records = read_topic(running.platform.env, Topic.DOCUMENTS_RECEIVED.dlq, timeout=3)
        return next((r for r in records if r.value == bad.read_bytes()), None)

    record = eventually(dead_letter, what="the broken document in documents.received.dlq")
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["tw-error-reason"] == "malformed-xml"
    assert "line 1" in headers["tw-error"]
    assert headers["tw-source-topic"] == "documents.received"
    assert headers["tw-service"] == "ingest"
    assert headers["tw-filename"] == "broken-notice.xml"
    assert headers["tw-origin"] == "file"

    [good_notice] = parse_document(good.read_bytes())
    account = new_account(client, "Reader")
    eventually(
        lambda: client.get(f"/v1/notices/{good_notice.notice_id}", headers=auth(account)).status_code == 200,
        what="the good document imported beside the broken one to be classified",
    )


def test_a_broken_document_on_the_documents_topic_is_dead_lettered_with_its_offset(
    running: RunningPlatform,
) -> None:
    broken = b"<?xml version='1.0'?><PriorInformationNotice><unclosed>" + str(time.time_ns()).encode()

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=running.platform.env["KAFKA_BOOTSTRAP_SERVERS"])
        await producer.start()
        try:
            await producer.send_and_wait(
                Topic.DOCUMENTS_RECEIVED.value, broken, key=b"k", headers=[("tw-filename", b"bulk.xml")]
            )
        finally:
            await producer.stop()

    asyncio.run(publish())

    def dead_letter() -> Any:
        records = read_topic(running.platform.env, Topic.DOCUMENTS_RECEIVED.dlq, timeout=3)
        return next((r for r in records if r.value == broken), None)

    record = eventually(dead_letter, what="the broken document in documents.received.dlq")
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["tw-error-reason"] == "malformed-xml"
    assert headers["tw-source-offset"].isdigit()
    assert headers["tw-source-partition"].isdigit()
    assert headers["tw-filename"] == "bulk.xml"


def test_one_account_never_sees_another_accounts_resources(running: RunningPlatform, client: httpx.Client) -> None:
    alice, bob = new_account(client, "Alice"), new_account(client, "Bob")
    endpoint = client.post("/v1/webhook-endpoints", json={"url": f"{running.hooks.url}/alice"}, headers=auth(alice))
    created = client.post(
        "/v1/subscriptions",
        json={"name": "Alice", "filters": {"regions": ["76"]}, "delivery": {"email": "alice@example.org"}},
        headers=auth(alice),
    ).json()
    assert client.get(f"/v1/subscriptions/{created['id']}", headers=auth(bob)).status_code == 404
    assert client.delete(f"/v1/subscriptions/{created['id']}", headers=auth(bob)).status_code == 404
    assert client.get("/v1/subscriptions", headers=auth(bob)).json() == []
    assert client.get("/v1/webhook-endpoints", headers=auth(bob)).json() == []
    stolen = client.post(
        "/v1/subscriptions",
        json={"name": "Bob", "delivery": {"webhook_endpoint_id": endpoint.json()["id"]}},
        headers=auth(bob),
    )
    assert stolen.status_code == 422
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=auth(alice)).json()] == [created["id"]]
    assert (
        client.get("/v1/subscriptions", headers={"authorization": "Bearer tw_0000000000000000_nope"}).status_code == 401
    )
    assert client.get("/v1/subscriptions").status_code == 401


def test_publishing_takes_the_publisher_right_granted_by_an_operator(
    running: RunningPlatform, client: httpx.Client
) -> None:
    account = new_account(client, "Editeur")
    notice, headers = PIEMONT.read_bytes(), {**auth(account), "content-type": "application/xml"}
    refused = client.post("/v1/notices", content=notice, headers=headers)
    assert refused.status_code == 403
    assert "publisher right" in refused.json()["detail"]

    wrong = client.put(f"/v1/admin/accounts/{account['id']}/publisher", headers=auth(account))
    assert wrong.status_code == 401
    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    assert client.put("/v1/admin/accounts/acc_nobody/publisher", headers=operator).status_code == 404
    assert client.put(f"/v1/admin/accounts/{account['id']}/publisher", headers=operator).status_code == 204
    assert client.post("/v1/notices", content=notice, headers=headers).status_code == 202

    assert client.delete(f"/v1/admin/accounts/{account['id']}/publisher", headers=operator).status_code == 204
    assert client.post("/v1/notices", content=notice, headers=headers).status_code == 403


def test_tenderwatch_poll_reads_boamp_to_the_end_then_resumes_from_its_cursor(
    running: RunningPlatform, client: httpx.Client
) -> None:
    def poll() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.platform.cli", "poll", "boamp"],
            env=running.platform.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = poll()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "boamp: 1 page(s), 5 document(s) with 5 notice(s), 0 rejected, reached the end" in first.stdout
    account = new_account(client, "LecteurBOAMP")
    notice = eventually(
        lambda: (r := client.get("/v1/notices/boamp:16-652", headers=auth(account))).status_code == 200 and r.json(),
        what="a polled BOAMP notice to be classified",
    )
    assert notice["departments"] == ["42"]
    assert notice["title"].startswith("DAMR 2016/01 PRESTATION D'INTERIM MEDICAL")

    second = poll()  # resumes from the stored cursor: only the last publication day is read again
    assert second.returncode == 0, second.stdout + second.stderr
    assert "boamp: 1 page(s), 1 document(s)" in second.stdout
