"""One stack per database for the whole suite: attacks that do not interfere share it (each test makes its own
agents), so the suite starts three processes per database (two sandboxes and the hub) rather than per test."""

from collections.abc import Iterator

import pytest

from tests.harness import postgres_database
from tests.security.stack import Stack, security_stack


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Tests that touch nothing database-specific take only the SQLite one: `@pytest.mark.parametrize("stack",
    ["sqlite"], indirect=True)`."""
    tmp = tmp_path_factory.mktemp(f"security-{request.param}")
    if request.param == "sqlite":
        with security_stack(tmp, "sqlite", f"sqlite:///{tmp / 'switchboard.db'}") as running:
            yield running
    else:
        with postgres_database() as url, security_stack(tmp, "postgresql", url) as running:
            yield running
