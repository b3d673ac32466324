"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and run down again."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from hub.db import alembic_config, migrate
from hub.models import Base
from tests.harness import Process, free_port


def test_migrations_match_the_models_and_downgrade(database_url: str) -> None:
    migrate(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        command.downgrade(alembic_config(database_url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def _serve(tmp_path: Path, database_url: str, port: int) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env |= {"SWITCHBOARD_DATABASE_URL": database_url, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")}
    return Process([sys.executable, "-m", "hub", "serve", "--port", str(port)], env, tmp_path / "serve.log")


def _pretend_newer(database_url: str, floor: str) -> None:
    """What a newer release's migration leaves: a revision this code does not know, and its floor."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        connection.execute(text("UPDATE hub_meta SET value = :floor WHERE key = 'schema_floor'"), {"floor": floor})
    engine.dispose()


def test_an_older_replica_serves_on_an_expanded_schema_and_refuses_a_contracted_one(
    tmp_path: Path, database_url: str
) -> None:
    migrate(database_url)
    _pretend_newer(database_url, "0001")  # the newer release only expanded the schema
    port = free_port()
    server = _serve(tmp_path, database_url, port)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_for(f"{url}/healthz")
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    finally:
        server.stop()

    _pretend_newer(database_url, "9998")  # it took away something this code needs
    refused = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--port", str(free_port())],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 3 and "newer Switchboard" in refused.stderr and "9998" in refused.stderr


def test_every_migration_expands_unless_it_says_it_contracts() -> None:
    """Dropping or altering what an older replica reads must be declared (`contract = True`), which raises the
    floor: a rolling upgrade then stops older replicas instead of breaking them."""
    for path in sorted((Path(__file__).parents[2] / "hub" / "migrations" / "versions").glob("0*.py")):
        source = path.read_text()
        upgrade = source[source.index("def upgrade") : source.index("def downgrade")]
        takes_away = any(op in upgrade for op in ("drop_column", "drop_table", "alter_column", "drop_index"))
        assert not takes_away or "\ncontract = True" in source, path.name
