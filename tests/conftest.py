import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Hub, Sandbox, postgres_database, run_hub, run_sandbox


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that takes this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'switchboard.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def hubspot(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def hub(tmp_path: Path, database_url: str, hubspot: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"hubspot": hubspot}) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_ambient_switchboard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests configure the hub explicitly; a developer's shell settings must not leak in.
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_") and name not in ("SWITCHBOARD_TEST_PG", "SWITCHBOARD_TEST_REDIS"):
            monkeypatch.delenv(name)
