"""The contract documents under `schemas/`: JSON Schema of every event, AsyncAPI of every service.

`tenderwatch docs` writes them; `tenderwatch docs --check` (run by the tests) fails when the committed
documents differ from what the code generates now.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import schemas
from services.runtime.settings import Settings

_EVENTS: tuple[type[BaseModel], ...] = (
    schemas.Notice,
    schemas.ClassifiedNotice,
    schemas.Subscription,
    schemas.SubscriptionChange,
    schemas.WebhookEndpoint,
    schemas.Match,
    schemas.Delivery,
)
_DOCS_BROKER = "kafka:9092"  # the server named in the documents; any address will do, nothing connects


def _schemas_dir() -> Path:
    return Path(schemas.__file__).parent


def _service_documents() -> dict[str, dict[str, Any]]:
    from services.api.app import Api
    from services.classifier.app import ClassifierService
    from services.ingest.app import Ingest
    from services.matcher.app import Matcher
    from services.notifier.app import Notifier

    settings = Settings(kafka_bootstrap_servers=_DOCS_BROKER)
    services = {
        "ingest": Ingest(settings).runtime,
        "classifier": ClassifierService(settings).runtime,
        "matcher": Matcher(settings).runtime,
        "notifier": Notifier(settings).runtime,
        "api": Api(settings).runtime,
    }
    return {name: runtime.asyncapi() for name, runtime in services.items()}


def generate() -> dict[str, str]:
    """Relative path under schemas/ -> document text."""
    out: dict[str, str] = {}
    for model in _EVENTS:
        out[f"jsonschema/{model.__name__}.json"] = _dump(model.model_json_schema(mode="serialization"))
    for name, document in _service_documents().items():
        out[f"asyncapi/{name}.json"] = _dump(document)
    return out


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_documents() -> dict[str, str]:
    """Path -> unified diff, for each committed document that differs from the generated one."""
    base = _schemas_dir()
    stale: dict[str, str] = {}
    for relative, text in generate().items():
        path = base / relative
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), f"committed {relative}", f"generated {relative}", lineterm=""
            )
            stale[relative] = "\n".join(list(diff)[:40])
    return stale


def write_documents(*, check: bool) -> int:
    if check:
        stale = stale_documents()
        for relative, diff in stale.items():
            print(f"schemas/{relative} is out of date:\n{diff}\n")
        if stale:
            print("run `make docs` and commit the result")
        return 1 if stale else 0
    base = _schemas_dir()
    for relative, text in generate().items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote schemas/{relative}")
    return 0
