"""A private PostgreSQL cluster for one test, so that test may stop and restart its database while the rest
of the suite keeps using the shared server on 127.0.0.1:5432.

The cluster listens on 127.0.0.1 on a free port (no unix socket), trusts local connections, and lives in a
directory of its own under the system temp dir, removed afterwards. initdb and the server refuse to run as
root, so as root (CI containers) they run as the `postgres` user, which owns the data directory.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.harness import free_port

__all__ = ["PostgresCluster", "postgres_binaries", "private_postgres"]

_DATABASE = "switchboard"
_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 60
shared_buffers = 16MB
logging_collector = off
"""


def postgres_binaries() -> Path:
    """The newest installed server's bin directory (Debian keeps each major version apart), or PATH's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    return Path(on_path).parent


def _as_owner() -> list[str]:
    """The prefix that runs a server binary as a user it accepts: `postgres` when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresCluster:
    """One running cluster; `url` names its `switchboard` database, for SQLAlchemy with psycopg."""

    port: int
    data_dir: Path
    log_path: Path
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{_DATABASE}"

    def _pg_ctl(self, *args: str) -> None:
        command = [*_as_owner(), str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"pg_ctl {args[0]} failed: {done.stdout}{done.stderr}\n{log[-3000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start", "--wait", "--timeout=30", "--log", str(self.log_path))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: roll back open transactions, drop every client) and wait until it is down."""
        self._pg_ctl("stop", "--wait", "--timeout=30", "--mode", mode)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    """A fresh cluster with an empty `switchboard` database, running until the block ends, then removed."""
    bin_dir = postgres_binaries()
    # Not pytest's tmp_path: root's temp tree is closed to the `postgres` user, and the path must stay short.
    root = Path(tempfile.mkdtemp(prefix="sb-pg-"))
    data_dir = root / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(data_dir, "postgres", "postgres")
    cluster = PostgresCluster(free_port(), data_dir, root / "server.log", bin_dir)
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        subprocess.run(
            [*_as_owner(), *initdb, "--locale=C", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(port=cluster.port))
        cluster.start()
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{_DATABASE}"')
            yield cluster
        finally:
            # Already stopped, when a test failed while its database was down.
            with contextlib.suppress(RuntimeError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
