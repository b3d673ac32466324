"""The benchmark runs end to end at tiny counts: every mode answers every call, the ratios print, and so do
the constraints section and the policy-function timings. Timings are never asserted; they belong to the
machine and the moment."""

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.grants import CONSTRAINED, NORATE, PLAIN
from bench.load import percentile
from tests.harness import ROOT

CALLS, LEVELS = 20, (1, 4)
MODES = ("direct", "proxy", PLAIN, CONSTRAINED, NORATE)


def _bench(tmp_path: Path, levels: Sequence[int], *options: str) -> tuple[str, dict[str, Any]]:
    """`python -m bench` at tiny counts: what it printed, and what it wrote with --json."""
    out = tmp_path / "bench.json"
    concurrency = ",".join(map(str, levels))
    command = [sys.executable, "-m", "bench", "--calls", str(CALLS), "--concurrency", concurrency, "--json", str(out)]
    done = subprocess.run(
        [*command, *options, "--function-seconds", "0.005"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written: dict[str, Any] = json.loads(out.read_text())
    return done.stdout, written


def test_benchmark_completes_with_every_call_answered(tmp_path: Path) -> None:
    stdout, written = _bench(tmp_path, LEVELS)
    measurements = written["runs"]
    seen = {(m["mode"], m["concurrency"]) for m in measurements}
    assert seen == {(mode, c) for mode in MODES for c in LEVELS}
    for m in measurements:
        assert m["errors"] == {}, (m["mode"], m["concurrency"], m["error_samples"])
        assert m["ok"] == CALLS, m
    # Each row is the median of three rounds, and every round is kept.
    assert "each row is the median of 3 rounds" in stdout
    rounds = written["rounds"]
    assert sorted((r[0]["mode"], r[0]["concurrency"], len(r)) for r in rounds) == sorted(
        (mode, c, 3) for mode in MODES for c in LEVELS
    )
    assert all(m["ok"] == CALLS and m["errors"] == {} for r in rounds for m in r)
    for c in LEVELS:
        assert f"ratios at c={c}" in stdout
    assert stdout.count("hub/direct  p50") == len(LEVELS)
    assert stdout.count("hub/proxy   p50") == len(LEVELS)
    for c in LEVELS:
        assert f"constraint ratios at c={c}" in stdout
    for label in (f"{CONSTRAINED}/plain", f"{NORATE}/plain", f"rate alone: {CONSTRAINED}/{NORATE}"):
        assert stdout.count(f"  {label} ") == len(LEVELS), label
    assert "the provider call alone, in one process" in stdout
    for c in LEVELS:
        assert f"c={c:<3} hubspot SDK " in stdout
    assert stdout.count("vs ContextForge: CPU ") == len(LEVELS)
    functions = written["policy_functions"]
    assert [f["name"].split(",")[0] for f in functions] == ["decide", "decide", "shape_result", "flow.candidates"]
    assert all(f["us_per_call"] > 0 for f in functions)
    assert "policy functions, in-process" in stdout


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 0.99) == 7.0


def test_with_redis_the_hub_counts_there_and_redis_cpu_is_charged_to_it(tmp_path: Path) -> None:
    stdout, written = _bench(tmp_path, (4,), "--redis")
    assert "hub database sqlite, rate counters in Redis" in stdout
    runs = {m["mode"]: m for m in written["runs"]}
    assert all(m["ok"] == CALLS and m["errors"] == {} for m in runs.values())
    # The Redis server is charged as the hub's database; the proxy and direct modes have none.
    assert "database" in runs[CONSTRAINED]["cpu_seconds"] and "database" not in runs["proxy"]["cpu_seconds"]
