"""prism, the OpenAPI mock server the contract tests check requests against: start it, wait, stop it."""

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import free_port

__all__ = ["PRISM", "ROOT", "serve_prism"]

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / ".tools/node/node_modules/.bin/prism"


@contextmanager
def serve_prism(specs: Mapping[str, Path], logs: Path) -> Iterator[dict[str, str]]:
    """One prism per spec, started together (each takes seconds), yielding their base URLs by name.

    Skips the calling test when prism is not installed; prism's output goes to `logs/<name>.log`.
    """
    if not PRISM.exists():
        pytest.skip(f"prism is not installed at {PRISM} (`.ci/run` installs @stoplight/prism-cli@5 there)")
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for name, spec in specs.items():
            port = free_port()
            with (logs / f"{name}.log").open("wb") as log:  # the child keeps its own handle
                proc = subprocess.Popen(
                    [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            started[name] = (proc, port)
        for name, (proc, port) in started.items():
            _wait_for_port(proc, port, logs / f"{name}.log")
        yield {name: f"http://127.0.0.1:{port}" for name, (_, port) in started.items()}
    finally:
        for proc, _ in started.values():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prism exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"prism did not listen on {port}:\n{log_path.read_text()[-3000:]}")
