"""Fixtures for the matcher tests."""

from __future__ import annotations

import pytest

from schemas.notice import ClassifiedNotice

from . import factories


@pytest.fixture(scope="session")
def boamp_notices() -> dict[str, ClassifiedNotice]:
    return factories.boamp_notices()
