"""The committed JSON Schema and AsyncAPI documents are what the code generates now."""

from __future__ import annotations

import json

from services.platform.contracts import generate, stale_documents


def test_committed_contract_documents_are_up_to_date() -> None:
    stale = stale_documents()
    assert not stale, "run `make docs` and commit the result:\n" + "\n\n".join(stale.values())


def test_every_service_documents_what_it_consumes_and_produces() -> None:
    documents = generate()
    channels = {
        name.removeprefix("asyncapi/").removesuffix(".json"): set(json.loads(text)["channels"])
        for name, text in documents.items()
        if name.startswith("asyncapi/")
    }
    assert channels["ingest"] == {"documents.received", "notices.received"}
    assert channels["classifier"] == {"notices.received", "notices.classified"}
    assert channels["matcher"] == {"notices.classified", "subscriptions.changes", "alerts.matched"}
    assert channels["notifier"] == {"alerts.matched", "webhook-endpoints.changes", "alerts.delivered"}
    assert channels["api"] == {"notices.classified", "subscriptions.changes", "webhook-endpoints.changes"}
    notice_schema = json.loads(documents["jsonschema/Notice.json"])
    assert {"notice_id", "version", "kind", "title", "buyer"} <= set(notice_schema["required"])
