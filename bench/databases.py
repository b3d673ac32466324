"""The hub's database for one benchmark: SQLite in the run's temp dir, or a fresh PostgreSQL database; and the
Redis that holds its rate counters with `--redis`."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

__all__ = ["KINDS", "REDIS_URL", "database_url"]

KINDS = ("sqlite", "postgresql")
# An existing database to connect to while creating and dropping the benchmark's own (trust auth on loopback).
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")
# The machine's Redis; the hub's keys carry a prefix of its own and expire with their windows.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def database_url(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'switchboard.db'}"
        return
    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(PG_ADMIN_URL)._replace(scheme="postgresql+psycopg", path=f"/{name}").geturl()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
