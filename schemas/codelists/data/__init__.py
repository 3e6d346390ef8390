"""Reference data shipped with the classifier; PROVENANCE.md says where each file comes from."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def data_file(name: str) -> Path:
    """The path of a bundled reference data file."""
    path = _HERE / name
    if not path.is_file():
        raise FileNotFoundError(f"reference data file {name!r} is missing from {_HERE}; reinstall the package")
    return path
