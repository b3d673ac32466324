"""The scale curve: the same allowed call with 1, 2 and 4 hub replicas on one PostgreSQL, then at growing data
sizes (agents, grants, audit records), with what each policy change costs at that size.

Replicas are `switchboard serve` processes on the bench's database sharing its master keys and admin token
(as docs/deploy.md runs them); the load generator spreads its clients round-robin over their URLs and charges
every replica's CPU to the hub. The size curve grows the database with `bench.scale_data` and measures the
same call by the same agent (`plain`, no constraints) with one replica: a call's lookups come from the
in-memory policy snapshot and its writes are one audit append (plus the fingerprints of what it read), so its
cost should not grow with the data. What does grow is the snapshot: every replica reloads all of it on any
change, which is timed per size (per change, not per call).

Each row is the median of `--rounds` runs, as in the bench's main table: the replica counts interleave within
a round, and so do a size's two concurrencies (sizes cannot: the data only grows). One run per size and
concurrency had made the ratios swing by a third either way from run to run at one client.

Always on PostgreSQL, whatever `--db` says: replicas need a shared database. Ratios are printed, never
asserted; absolute numbers belong to this machine at this moment.
"""

import argparse
import asyncio
import json
import math
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psycopg

from bench import report
from bench.cpu import cpu_seconds
from bench.databases import PG_ADMIN_URL, database_url
from bench.grants import PLAIN, agent_grants
from bench.load import RunSpec
from bench.processes import Server, free_port
from bench.runner import Measurement, add_rounds_option, median_round, run_load
from bench.scale_data import DataGenerator, Size, announce_change, parse_sizes, plain_conninfo
from bench.stack import Stack, Target, running_stack
from bench.upstream import TOOL
from hub.credentials import hash_secret
from hub.db import Database
from hub.policy_cache import PolicyCache, Snapshot

__all__ = ["DEFAULT_SIZES", "Reload", "add_arguments", "main", "section", "wanted"]

DEFAULT_SIZES = "0:0:0,1k:10k:1M,10k:100k:10M"
_PATH = f"/v1/tools/{TOOL}/call"
_WARMUP_MAX = 200
_RELOAD_REPEATS = 3
_SEEN_TIMEOUT = 120.0  # seconds a replica may take to show a change, even with a huge snapshot
_POLL = 0.05
# After starting a run: the load generator's start-up and warm-up take about this long.
_CHANGE_AFTER = 1.0
_AGENT = next(g.agent for g in agent_grants("0") if g.mode == PLAIN)  # the agent behind the `hub` mode


@dataclass(frozen=True)
class Reload:
    """One policy change at one size: the snapshot it loads, how long loading takes, what the hub paid."""

    size: str
    agents: int
    keys: int
    grants: int
    reload_ms: float  # best of _RELOAD_REPEATS loads in the bench process (the hub's own PolicyCache.reload)
    hub_cpu_ms: float  # the hub's CPU from the change to its first answer with the new key (its reload)
    seen_after_ms: float  # wall time from the commit to that answer: poll interval + reload
    hub_rss_mb: float
    generated_s: dict[str, float]


@dataclass(frozen=True)
class _SizeRun:
    size: str
    during_change: bool  # one policy change was announced as the run began: the replica reloaded meanwhile
    rounds: list[Measurement]

    @property
    def m(self) -> Measurement:
        return median_round(self.rounds)

    @property
    def label(self) -> str:
        return f"{self.size} +change" if self.during_change else self.size


@dataclass
class _Result:
    replicas: list[list[Measurement]]  # each replica count's rounds
    sizes: list[_SizeRun]
    reloads: list[Reload]

    def all_runs(self) -> list[Measurement]:
        return [*(m for rounds in self.replicas for m in rounds), *(m for r in self.sizes for m in r.rounds)]

    def as_dict(self) -> dict[str, object]:
        """Each row's median round, as reported, and every round."""
        return {
            "replicas": [median_round(rounds).as_dict() for rounds in self.replicas],
            "sizes": [{"size": r.size, "during_change": r.during_change, **r.m.as_dict()} for r in self.sizes],
            "reloads": [asdict(r) for r in self.reloads],
            "rounds": [m.as_dict() for m in self.all_runs()],
        }


def _positive_ints(raw: str) -> list[int]:
    values = [int(v) for v in raw.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, comma-separated")
    return values


def _sizes(raw: str) -> list[Size]:
    try:
        return parse_sizes(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser, *, toggle: bool = True) -> None:
    """The scale options, for `python -m bench` (with --scale/--no-scale) and `python -m bench.scale`."""
    group = parser.add_argument_group("scale curve (always on PostgreSQL)")
    if toggle:
        group.add_argument(
            "--scale",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="run the scale curve after the other sections (default: on, unless --calls is given; "
            "its default sizes generate ten million rows)",
        )
    group.add_argument(
        "--scale-sizes",
        type=_sizes,
        default=parse_sizes(DEFAULT_SIZES),
        metavar="A:G:R[,...]",
        help=f"generated agents:grants:audit records per size, k/M suffixes (default {DEFAULT_SIZES})",
    )
    group.add_argument(
        "--scale-replicas",
        type=_positive_ints,
        default=[1, 2, 4],
        metavar="N[,N...]",
        help="hub replicas per run of the replica curve (default 1,2,4)",
    )
    group.add_argument("--scale-calls", type=int, default=2000, help="measured calls per run (default 2000)")
    group.add_argument(
        "--scale-concurrency",
        type=int,
        default=32,
        help="clients for the replica curve; the size curve runs at 1 and this (default 32)",
    )


def wanted(args: argparse.Namespace) -> bool:
    """--scale or --no-scale as given; otherwise on for a full run and off for a quick one (`--calls` given, as
    the smoke test does): the default sizes generate ten million rows, which a quick run cannot wait for."""
    return bool(args.scale) if args.scale is not None else args.calls is None


def _warmup(calls: int, concurrency: int) -> int:
    return min(_WARMUP_MAX, max(2 * concurrency, calls // 5))


def _server(stack: Stack, name: str) -> Server:
    return next(s for s in stack.servers if s.name == name)


def _start_replica(hub: Server, index: int, tmp: Path) -> Server:
    """Another `switchboard serve` on the same database, with the first one's master keys and admin token."""
    keys = (Path(hub.env["SWITCHBOARD_DATA_DIR"]) / "master.key").read_text().strip().replace("\n", ",")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **hub.env,
        "SWITCHBOARD_MASTER_KEYS": keys,
        "SWITCHBOARD_DATA_DIR": str(tmp / f"hubdata-{index}"),
        "SWITCHBOARD_BASE_URL": url,
    }
    replica = Server(f"hub-{index}", ["hub", "serve", "--port", str(port)], env, tmp / f"hub-{index}.log", url)
    replica.start("/healthz")
    return replica


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


class _Scene:
    """The running stack plus what the scale curve adds: replicas, the data generator, the measured target."""

    def __init__(self, stack: Stack, url: str, tmp: Path, args: argparse.Namespace) -> None:
        self.stack, self.url, self.tmp, self.args = stack, url, tmp, args
        self.hub, self.sandbox = _server(stack, "hub"), _server(stack, "sandbox")
        self.target: Target = next(t for t in stack.targets if t.mode == PLAIN)
        self.replicas: list[Server] = [self.hub]
        self.generator = DataGenerator(plain_conninfo(url), _connection_name(self.url))
        self._probes = 0

    def add_replicas(self, count: int) -> None:
        while len(self.replicas) < count:
            replica = _start_replica(self.hub, len(self.replicas) + 1, self.tmp)
            self.stack.servers.append(replica)  # stopped with the stack, and its log tail shown on errors
            self.replicas.append(replica)
            self._probe(replica)

    def stop_extra_replicas(self) -> None:
        for replica in self.replicas[1:]:
            replica.stop()
        self.replicas = [self.hub]

    def _probe(self, replica: Server) -> None:
        t = self.target
        answer = httpx.post(replica.url + _PATH, headers=t.headers, content=t.body, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"{replica.name} answered {answer.status_code}: {answer.text[:300]}")

    def measure(self, mode: str, replicas: int, concurrency: int, round_number: int = 1) -> Measurement:
        """One load-generator run against the first `replicas` replicas, clients round-robin over them."""
        serving, t, calls = self.replicas[:replicas], self.target, self.args.scale_calls
        spec = RunSpec(
            method=t.method,
            url=serving[0].url + _PATH,
            headers=t.headers,
            body=t.body,
            calls=calls,
            concurrency=concurrency,
            warmup=_warmup(calls, concurrency),
            max_seconds=self.args.max_seconds,
            pids={"hop": serving[0].pid, "upstream": self.sandbox.pid},
            postgres_database=t.postgres_database,
            more_urls=[r.url + _PATH for r in serving[1:]],
            more_pids={"hop": [r.pid for r in serving[1:]]},
        )
        m = run_load(spec, mode)
        print(f"  {mode:<22} c={concurrency:<3} round {round_number}: {m.ok} calls in {m.seconds:.1f} s", flush=True)
        return m

    def measure_during_change(self, size: Size, concurrency: int) -> Measurement:
        """The same run, with one policy change announced about when its measured phase begins: the replica
        reloads its whole snapshot in a worker thread meanwhile, sharing the GIL with the calls it serves."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            run = pool.submit(self.measure, f"size {size.label} +change", 1, concurrency)
            time.sleep(_CHANGE_AFTER)
            self._change()
            return run.result()

    def _change(self) -> float:
        """Announce a change as an admin would; seconds until the hub answers the new agent's key."""
        self._probes += 1
        key = "sbk_" + secrets.token_urlsafe(32)
        started = time.perf_counter()
        announce_change(self.generator.conninfo, agent=f"scale-probe-{self._probes}", key_hash=hash_secret(key))
        _wait_until_known(self.hub.url, key)
        return time.perf_counter() - started

    def reload(self, size: Size, generated: dict[str, float]) -> Reload:
        """One change on an idle hub, timed there (wall and CPU), then the same snapshot load timed in this
        process (best of a few), and what it holds."""
        cpu_before = cpu_seconds(self.hub.pid)
        seen = self._change()
        hub_cpu = cpu_seconds(self.hub.pid) - cpu_before
        best, snapshot = _time_reloads(self.url)
        return Reload(
            size=size.label,
            agents=len(snapshot.agents),
            keys=len(snapshot.keys),
            grants=sum(len(a.grants) for a in snapshot.agents.values()),
            reload_ms=best * 1000,
            hub_cpu_ms=hub_cpu * 1000,
            seen_after_ms=seen * 1000,
            hub_rss_mb=_rss_mb(self.hub.pid),
            generated_s=generated,
        )


def _connection_name(url: str) -> str:
    with psycopg.connect(plain_conninfo(url)) as conn:
        row = conn.execute("SELECT name FROM connections ORDER BY id LIMIT 1").fetchone()
    assert row is not None, "the stack connected the hub before the scale curve starts"
    return str(row[0])


def _wait_until_known(base_url: str, key: str) -> None:
    deadline = time.monotonic() + _SEEN_TIMEOUT
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as agent:
        while agent.get("/v1/tools").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not load a policy change within {_SEEN_TIMEOUT:.0f} s")
            time.sleep(_POLL)


def _time_reloads(url: str) -> tuple[float, Snapshot]:
    """The hub's own snapshot load (PolicyCache.reload), timed here where nothing else shares the process."""
    db = Database(url)

    async def timed() -> tuple[float, Snapshot]:
        cache = PolicyCache(db, poll_interval=3600)
        best = math.inf
        for _ in range(_RELOAD_REPEATS):
            started = time.perf_counter()
            await cache.reload()
            best = min(best, time.perf_counter() - started)
        return best, cache.snapshot

    try:
        return asyncio.run(timed())
    finally:
        db.dispose()


def _replica_curve(scene: _Scene) -> list[list[Measurement]]:
    """Each replica count's rounds; the counts interleave within a round."""
    counts, rounds = scene.args.scale_replicas, scene.args.rounds
    print(f"scale: starting {max(counts) - 1} more hub replicas on the same database", flush=True)
    scene.add_replicas(max(counts))
    runs: dict[int, list[Measurement]] = {n: [] for n in counts}
    try:
        for round_number in range(1, rounds + 1):
            for n in counts:
                runs[n].append(scene.measure(f"replicas={n}", n, scene.args.scale_concurrency, round_number))
    finally:
        scene.stop_extra_replicas()  # the size curve runs on one replica, with the cores to itself
    return list(runs.values())


def _size_curve(scene: _Scene) -> tuple[list[_SizeRun], list[Reload]]:
    """Each size's rounds at 1 client and at the curve's concurrency, interleaved (sizes cannot be: the data
    only grows), then one run during a policy change."""
    rows, reloads = [], []
    levels = (1, scene.args.scale_concurrency)
    for size in scene.args.scale_sizes:
        print(f"scale: growing the database to {size.label} (agents/grants/audit records)", flush=True)
        generated = scene.generator.grow(size)
        reloads.append(scene.reload(size, generated))
        runs: dict[int, list[Measurement]] = {c: [] for c in levels}
        for round_number in range(1, scene.args.rounds + 1):
            for c in levels:
                runs[c].append(scene.measure(f"size {size.label}", 1, c, round_number))
        rows += [_SizeRun(size.label, False, runs[c]) for c in levels]
        rows.append(_SizeRun(size.label, True, [scene.measure_during_change(size, scene.args.scale_concurrency)]))
    return rows, reloads


def _run(args: argparse.Namespace) -> _Result:
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-scale-") as tmp,
        database_url("postgresql", Path(tmp)) as url,
        running_stack(Path(tmp), url) as stack,
    ):
        scene = _Scene(stack, url, Path(tmp), args)
        try:
            replicas = _replica_curve(scene)
            sizes, reloads = _size_curve(scene)
        except Exception:
            print(stack.log_tails())
            raise
        result = _Result(replicas, sizes, reloads)
        if _errors(result):
            print(stack.log_tails())
        return result


def _postgres_missing() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return f"{PG_ADMIN_URL}: {str(exc).strip().splitlines()[0]}"


# Printing ---------------------------------------------------------------------------------------------------


def _columns(first: str) -> tuple[tuple[str, str], ...]:
    return (
        (first, "<20"),
        ("conc", ">4"),
        ("calls", ">6"),
        ("errors", ">6"),
        ("p50 ms", ">8"),
        ("p99 ms", ">8"),
        ("calls/s", ">8"),
        ("hub CPU ms/call", ">15"),
        ("db CPU ms/call", ">14"),
    )


def _rows(m: Measurement, first: str, label: str) -> list[str]:
    cpu = (report.cell(m.cpu_ms_per_call("hop")), report.cell(m.cpu_ms_per_call("database")))
    return report.row(m, _columns(first), label, *cpu)


def _compare(m: Measurement, base: Measurement) -> str:
    return (
        f"p50 {report.ratio(m.p50_ms, base.p50_ms)}  p99 {report.ratio(m.p99_ms, base.p99_ms)}"
        f"  throughput {report.ratio(m.calls_per_second, base.calls_per_second)}"
        f"  hub CPU {report.ratio(m.cpu_ms_per_call('hop'), base.cpu_ms_per_call('hop'))}"
        f"  db CPU {report.ratio(m.cpu_ms_per_call('database'), base.cpu_ms_per_call('database'))}"
    )


def _machine_note(replicas: Sequence[int]) -> str:
    cores = os.cpu_count() or 0
    note = (
        f"  machine: {cores} cores, shared by the load generator, the sandbox upstream, every hub replica and\n"
        f"  PostgreSQL; load average {os.getloadavg()[0]:.1f} now."
    )
    if max(replicas) + 1 > cores:
        note += (
            f" {max(replicas)} replicas and the load generator contend for these {cores} cores,\n"
            "  so this curve shows what replicas cost one machine (contention on the CPU, the database and the\n"
            "  audit chain's head row), not what more machines would add."
        )
    return note


def _median_of(rounds: int) -> str:
    return f"the median of {rounds} rounds by hub + db CPU" if rounds > 1 else "one round (--rounds 1)"


def _replica_table(runs: Sequence[Sequence[Measurement]]) -> list[str]:
    if not runs:
        return []
    rows = [median_round(rounds) for rounds in runs]
    lines = [
        f"replicas on one PostgreSQL: c={rows[0].concurrency}, clients round-robin over the replicas "
        f"(hub CPU = all replicas), fresh database; each row is {_median_of(len(runs[0]))}",
        *report.header(_columns("replicas")),
        *(line for m in rows for line in _rows(m, "replicas", m.mode.removeprefix("replicas="))),
        "replica ratios over 1 replica (measured in this run)",
    ]
    base = rows[0]
    lines += [f"  {m.mode.removeprefix('replicas='):>2} replicas  {_compare(m, base)}" for m in rows[1:]]
    return lines


def _size_table(rows: Sequence[_SizeRun]) -> list[str]:
    if not rows:
        return []
    lines = [
        "data size: generated agents (a live key each) / grants / audit records, on top of the bench's own;",
        "one replica, the same call by the same agent; +change: one policy change announced as the run began",
        f"(one run); every other row is {_median_of(len(rows[0].rounds))}",
        *report.header(_columns("size")),
        *(line for r in rows for line in _rows(r.m, "size", r.label)),
    ]
    steady = {(r.size, r.m.concurrency): r.m for r in rows if not r.during_change}
    first = rows[0].size
    lines.append(f"size ratios over {first} (measured in this run; flat lookups stay near 1.00x)")
    lines += [
        f"  {r.size:<20} c={r.m.concurrency:<3} {_compare(r.m, steady[(first, r.m.concurrency)])}"
        for r in rows
        if r.size != first and not r.during_change
    ]
    lines.append("during a change, over the same size without one (the reload shares the replica's GIL)")
    lines += [
        f"  {r.size:<20} c={r.m.concurrency:<3} {_compare(r.m, steady[(r.size, r.m.concurrency)])}"
        for r in rows
        if r.during_change
    ]
    return lines


def _reload_table(reloads: Sequence[Reload]) -> list[str]:
    if not reloads:
        return []
    lines = [
        "policy snapshot reload, per change (not per call): every replica reloads every agent, key and grant",
        "when anything changes; reload = best of 3 in the bench process, hub CPU and seen-after from the running hub",
        f"{'size':<20} {'agents':>7} {'keys':>7} {'grants':>7} {'reload ms':>10} {'hub CPU ms':>10} "
        f"{'seen after ms':>13} {'hub RSS MB':>10}",
    ]
    lines.append("-" * len(lines[-1]))
    for r in reloads:
        lines.append(
            f"{r.size:<20} {r.agents:>7} {r.keys:>7} {r.grants:>7} {r.reload_ms:>10.1f} {r.hub_cpu_ms:>10.1f} "
            f"{r.seen_after_ms:>13.1f} {r.hub_rss_mb:>10.1f}"
        )
    for r in reloads:
        if r.generated_s:
            spent = ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in r.generated_s.items())
            lines.append(f"  generating up to {r.size}: {spent}")
    return lines


def _errors(result: _Result) -> list[str]:
    lines = []
    for m in result.all_runs():
        if m.errors:
            lines.append(f"scale {m.mode} c={m.concurrency}: {m.errors}")
            lines += [f"    {sample}" for sample in m.error_samples]
    return lines


def section(args: argparse.Namespace, json_path: Path | None = None) -> list[str]:
    """Run the scale curve and print its tables; returns error lines (empty when every call was answered)."""
    if not getattr(args, "scale", True):
        print("\nscale curve: skipped (--no-scale, or --calls given without --scale)")
        return []
    print(f"\nscale curve: the hub's {TOOL} call by agent `{_AGENT}` (no constraints) on one PostgreSQL", flush=True)
    missing = _postgres_missing()
    if missing is not None:
        print(f"  skipped: PostgreSQL is needed and unreachable ({missing})")
        return []
    result = _run(args)
    tables = [_replica_table(result.replicas), _size_table(result.sizes), _reload_table(result.reloads)]
    print("\n" + _machine_note(args.scale_replicas) + "\n\n" + "\n\n".join("\n".join(t) for t in tables if t))
    if json_path is not None:
        json_path.write_text(json.dumps(result.as_dict(), indent=2))
    return _errors(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    add_arguments(parser, toggle=False)
    add_rounds_option(parser)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop any one run after this long")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)
    print(report.machine("postgresql"), flush=True)
    errors = section(args, args.json)
    if errors:
        print("\nerrors:\n" + "\n".join(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
