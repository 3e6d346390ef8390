"""The reference files copied from their publishers are the copies PROVENANCE.md describes."""

from __future__ import annotations

import hashlib

import pytest

from schemas.codelists.data import data_file

# SHA-256 of the upstream files named in schemas/codelists/data/PROVENANCE.md.
COPIED = {
    "cpv_2008_fr.csv": "1171228f4c2df0cbbdac7ce09308ea22cada3dfdcb46df1e8fdb09df06956bdb",
    "cog-departments@2025.csv": "00e6571c1ac1696c80d5224b6e41dbdcc047e71c730695d5b149af5987e973d4",
    "cog-regions@2025.csv": "ab77733dc5c8f5fef4093556fe72e5badbba8534b7fef6ce4c065c96462e1fb2",
}


@pytest.mark.parametrize(("name", "sha256"), sorted(COPIED.items()))
def test_a_copied_reference_file_is_the_upstream_one(name: str, sha256: str) -> None:
    assert hashlib.sha256(data_file(name).read_bytes()).hexdigest() == sha256
