"""Alembic environment: migrations run from code (`hub.db.migrate`) or `alembic` with this folder."""

from alembic import context
from sqlalchemy import create_engine, text

from hub.models import Base

MIGRATION_LOCK = 0x5B0A12D  # any constant; one advisory lock key for "migrating the hub's schema"

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url

engine = create_engine(url)
# One transaction, committed at the end, holding the lock throughout (Alembic joins a transaction in progress).
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Replicas starting together migrate one at a time; the others then find nothing left to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
