"""The secrets scan: no token, refresh token, client secret, API key, master key, admin token, session or agent
key in plaintext anywhere a hub leaves data: its database, data directory, log, audit export, metrics, or the
error bodies it sent."""

import subprocess
from pathlib import Path

import httpx

from tests.harness import Hub

__all__ = ["no_secret_anywhere"]


def _database_text(hub: Hub) -> bytes:
    if hub.database_url.startswith("sqlite"):
        return b""  # the files themselves (database, WAL, shared memory) are scanned with the data directory
    dump = subprocess.run(
        ["pg_dump", "--data-only", "-h", "127.0.0.1", "-d", hub.database_url.rsplit("/", 1)[1]],
        capture_output=True,
        check=True,
    )
    return dump.stdout


def no_secret_anywhere(hub: Hub, secrets: set[str], *, audit_export: str = "") -> int:
    """Assert none of `secrets`, the hub's own (agent keys, admin token, client secrets) or its master key is
    in plaintext in: the database (files or a dump), the data directory, the hub's log, the audit export (the
    CLI's, when given, and the admin API's CSV and JSON), /metrics, or any error body the hub's clients got.
    Returns how many secrets were looked for."""
    with hub.admin() as admin:
        exports = [admin.get("/admin/api/audit", params={"format": f}).text for f in ("csv", "json")]
    haystacks: dict[str, bytes] = {
        "audit export (CLI)": audit_export.encode(),
        "audit export (API, CSV)": exports[0].encode(),
        "audit export (API, JSON)": exports[1].encode(),
        "metrics": httpx.get(f"{hub.url}/metrics", timeout=30).content,
        "database dump": _database_text(hub),
        "hub log": hub.process.log_path.read_bytes(),
    }
    assert exports[1].count("\n") > 0 and b"switchboard_" in haystacks["metrics"]
    roots = [hub.data_dir]
    if hub.database_url.startswith("sqlite"):
        roots.append(Path(hub.database_url.removeprefix("sqlite:///")).parent)
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.name != "master.key":
                haystacks[str(path)] = path.read_bytes()
    for number, body in enumerate(hub.error_bodies):
        haystacks[f"error body #{number}"] = body
    master = (hub.data_dir / "master.key").read_text().strip()
    assert master
    wanted = {*secrets, *hub.secrets, master}
    assert all(len(s) >= 16 for s in wanted), "a short 'secret' would match by accident"
    for where, content in haystacks.items():
        for secret in wanted:
            at = content.find(secret.encode())
            # Named by its first characters and what precedes it: enough to find the leak, not to use it.
            context = content[max(0, at - 80) : at].decode(errors="replace")
            assert at < 0, f"a secret ({secret[:6]}…) appears in plaintext in {where}, after: {context!r}"
    return len(wanted)
