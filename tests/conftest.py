from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import stack_environment

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Kafka and PostgreSQL for the whole test session (see tests/stack.py for where they come from)."""
    with stack_environment(tmp_path_factory.mktemp("stack")) as env:
        yield env
