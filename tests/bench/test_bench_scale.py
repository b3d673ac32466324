"""The scale curve runs end to end at tiny sizes: two replicas answer every call, generated rows reach the hub's
snapshot, and the three tables print. Timings are never asserted; they belong to the machine and the moment."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scale_data import Size, parse_sizes
from tests.harness import ROOT

CALLS, CONCURRENCY, ROUNDS = 20, 4, 2
SIZES = "0:0:0,20:50:2k"
# What the bench creates itself: one agent per grant mode, each with one key and one grant, on one connection.
BENCH_AGENTS = 3


def test_scale_curve_completes_with_every_call_answered(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [sys.executable, "-m", "bench.scale", "--scale-sizes", SIZES, "--scale-replicas", "1,2"]
    options = ["--scale-calls", str(CALLS), "--scale-concurrency", str(CONCURRENCY), "--rounds", str(ROUNDS)]
    options += ["--json", str(out)]
    done = subprocess.run([*command, *options], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = json.loads(out.read_text())
    runs = written["replicas"] + written["sizes"]
    assert [m["mode"] for m in written["replicas"]] == ["replicas=1", "replicas=2"]
    assert [(m["size"], m["concurrency"], m["during_change"]) for m in written["sizes"]] == [
        (size, c, change)
        for size in ("0/0/0", "20/50/2k")
        for c, change in ((1, False), (CONCURRENCY, False), (CONCURRENCY, True))
    ]
    # Every replica count and steady size row is measured ROUNDS times; a run during a change, once.
    assert len(written["rounds"]) == 2 * ROUNDS + 2 * (2 * ROUNDS + 1)
    for m in written["rounds"]:
        assert m["errors"] == {}, (m["mode"], m["concurrency"], m["error_samples"])
        assert m["ok"] == CALLS, m
    for m in runs:  # each row reported is its round of median CPU: of two, the lower
        rounds = [r for r in written["rounds"] if (r["mode"], r["concurrency"]) == (m["mode"], m["concurrency"])]
        assert len(rounds) == (1 if m["mode"].endswith("+change") else ROUNDS), m["mode"]
        median = min(rounds, key=lambda r: sum(r["cpu_seconds"][role] for role in ("hop", "database")))
        assert m | median == m, (m, rounds)  # a size row adds its size to the round's fields
    baseline, grown = written["reloads"]
    # Each change adds one probe agent with a key (two a size: the timed one, the one during a run); the
    # generated agents each bring a key, too.
    assert (baseline["agents"], baseline["keys"], baseline["grants"]) == (BENCH_AGENTS + 1, BENCH_AGENTS + 1, 3)
    assert (grown["agents"], grown["keys"], grown["grants"]) == (BENCH_AGENTS + 23, BENCH_AGENTS + 23, 53)
    assert set(grown["generated_s"]) == {"agents", "grants", "audit", "vacuum+checkpoint"}
    headings = (
        "replicas on one PostgreSQL",
        "replica ratios over 1 replica",
        "size ratios over 0/0/0",
        "during a change",
    )
    for heading in headings:
        assert heading in done.stdout, heading
    assert "policy snapshot reload, per change" in done.stdout
    assert "cores, shared by the load generator" in done.stdout  # the machine is stated, not hidden


def test_sizes_parse_with_suffixes_and_only_grow() -> None:
    assert parse_sizes("0:0:0,1k:10k:1.5M") == [Size(0, 0, 0), Size(1_000, 10_000, 1_500_000)]
    assert Size(10_000, 100_000, 10_000_000).label == "10k/100k/10M"
    for wrong in ("1k:10k", "0:5:0", "1k:10k:1M,10:10k:2M", "1x:0:0"):
        with pytest.raises(ValueError):
            parse_sizes(wrong)
