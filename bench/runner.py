"""One measured run: a load-generator process against one mode at one concurrency, and what it measured."""

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.load import RunSpec
from bench.processes import ROOT
from bench.stack import Target

__all__ = ["Measurement", "add_rounds_option", "measure", "median_round", "run_load"]


@dataclass(frozen=True)
class Measurement:
    mode: str
    concurrency: int
    requested: int
    issued: int
    ok: int
    errors: dict[str, int]
    error_samples: list[str]
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: dict[str, float]  # role ("hop", "upstream", "database") -> CPU seconds in the measured phase
    client_cpu_seconds: float

    @property
    def calls_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def cpu_ms_per_call(self, *roles: str) -> float | None:
        """CPU of these server roles per successful call; None when this mode has none of them."""
        present = [self.cpu_seconds[r] for r in roles if r in self.cpu_seconds]
        if not present or not self.ok:
            return None
        return sum(present) * 1000 / self.ok

    @property
    def server_cpu_ms_per_call(self) -> float:
        """Everything the servers spent per call: the hop in front (if any) plus the upstream."""
        return sum(self.cpu_seconds.values()) * 1000 / self.ok if self.ok else 0.0

    @property
    def own_roles(self) -> tuple[str, ...]:
        """The servers whose CPU is the mode's own: the hop in front with its database; for direct, the upstream."""
        return tuple(role for role in ("hop", "database") if role in self.cpu_seconds) or tuple(self.cpu_seconds)

    @property
    def own_cpu_ms_per_call(self) -> float:
        return self.cpu_ms_per_call(*self.own_roles) or 0.0

    @property
    def client_cpu_ms_per_call(self) -> float:
        return self.client_cpu_seconds * 1000 / self.ok if self.ok else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rounds(raw: str) -> int:
    rounds = int(raw)
    if rounds < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return rounds


def add_rounds_option(parser: argparse.ArgumentParser) -> None:
    """`--rounds`, for `python -m bench` and `python -m bench.scale` alike."""
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=3,
        help="measure each row this many times, interleaved with the rows it is compared with where the "
        "data allows, and report its median round (default 3)",
    )


def median_round(rounds: Sequence[Measurement]) -> Measurement:
    """Of one mode's rounds at one level, the one whose own CPU per call is the median (the lower of the
    middle two for an even count): CPU is the bench's verdict, and the row keeps that round's latencies."""
    ordered = sorted(rounds, key=lambda m: m.own_cpu_ms_per_call)
    return ordered[(len(ordered) - 1) // 2]


def measure(target: Target, *, concurrency: int, calls: int, warmup: int, max_seconds: float) -> Measurement:
    spec = RunSpec(
        method=target.method,
        url=target.url,
        headers=target.headers,
        body=target.body,
        calls=calls,
        concurrency=concurrency,
        warmup=warmup,
        max_seconds=max_seconds,
        pids=target.pids,
        postgres_database=target.postgres_database,
        database_pids=list(target.database_pids),
    )
    return run_load(spec, target.mode)


def run_load(spec: RunSpec, mode: str) -> Measurement:
    """Run the load generator, a process of its own, with `spec`; what it measured, as `mode`."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=json.dumps(asdict(spec)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=spec.max_seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed ({mode}, c={spec.concurrency}):\n{done.stderr[-3000:]}")
    return Measurement(mode=mode, concurrency=spec.concurrency, requested=spec.calls, **json.loads(done.stdout))
