"""Canonical notices sent as JSON (the publish API's own format)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.ingest.sources import DocumentError, parse_document


def _canonical(**overrides: Any) -> bytes:
    notice: dict[str, Any] = {
        "schema_version": 1,
        "notice_id": "mairie-sete:2026-017",
        "version": "",
        "source": "mairie-sete",
        "source_id": "2026-017",
        "kind": "planning",
        "title": "Réfection du quai de la Consigne",
        "language": "fr",
        "buyer": {"name": "Ville de Sète", "national_id": "21340301500014"},
        "cpv_main": "45241000",
        "places": [{"postal_code": "34200", "country": "FR"}],
    }
    notice.update(overrides)
    return json.dumps(notice).encode()


def test_a_canonical_notice_is_taken_as_is_and_versioned_by_its_content() -> None:
    [notice] = parse_document(_canonical(), content_type="application/json")
    assert (notice.notice_id, notice.kind.value, notice.cpv_main) == ("mairie-sete:2026-017", "planning", "45241000")
    assert notice.version.startswith("h")
    [same] = parse_document(_canonical())
    [changed] = parse_document(_canonical(title="Réfection du quai de la Consigne (tranche 2)"))
    assert same.version == notice.version != changed.version


def test_a_canonical_notice_cannot_claim_a_feed_s_identifiers() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(_canonical(source="eforms", notice_id="eforms:2026-017"))
    assert caught.value.reason == "invalid-value"
    assert "reserved" in caught.value.message


def test_a_canonical_notice_id_is_source_and_source_id() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(_canonical(notice_id="mairie-sete:other"))
    assert "notice_id must be 'mairie-sete:2026-017'" in caught.value.message


def test_an_invalid_canonical_notice_names_the_field() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(_canonical(kind="someday"))
    assert caught.value.reason == "invalid-value"
    assert caught.value.message.startswith("canonical notice: kind:")
