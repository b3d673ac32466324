"""`python -m bench`: tool calls through the hub, directly, and through a minimal proxy; prints the ratios.

Every server is a real process on loopback; the load generator is a process of its own. The same run
measures what grant constraints cost: the same call by agents whose grants differ (`bench.grants`), and the
pure policy functions in-process once the servers have stopped (`bench.policy_functions`). Timings are
whatever this machine measured in this run: compare the ratios, not the absolute numbers.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import report, scale, sdk_share
from bench.databases import KINDS, REDIS_URL, database_url
from bench.grants import CONSTRAINED, NORATE
from bench.policy_functions import REPEATS, time_functions
from bench.runner import Measurement, add_rounds_option, measure, median_round
from bench.stack import Stack, running_stack

__all__ = ["main"]

_DEFAULT_CALLS = {1: 2000}  # any higher concurrency: 5000
_WARMUP_MAX = 200
_GRANT_ONLY = (CONSTRAINED, NORATE)  # modes shown in the constraints section alone


def _ints(raw: str) -> list[int]:
    values = [int(v) for v in raw.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, comma-separated")
    return values


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls",
        type=_ints,
        default=None,
        metavar="N[,N...]",
        help="measured calls per level: one number for every level, or one per level (default 2000 at c=1, 5000 above)",
    )
    parser.add_argument(
        "--concurrency",
        type=_ints,
        default=[1, 16, 64],
        metavar="C[,C...]",
        help="concurrent clients per level (default 1,16,64)",
    )
    parser.add_argument("--db", choices=KINDS, default="sqlite", help="the hub's database (default sqlite)")
    parser.add_argument(
        "--redis",
        nargs="?",
        const=REDIS_URL,
        default=None,
        metavar="URL",
        help=f"keep the hub's rate counters in Redis (default {REDIS_URL}); its server's CPU counts as db",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="stop any one run after this long, warm-up included (default 30)",
    )
    parser.add_argument(
        "--function-seconds",
        type=float,
        default=0.2,
        help=f"time each policy function this long per repeat, best of {REPEATS} (default 0.2)",
    )
    add_rounds_option(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    scale.add_arguments(parser)
    args = parser.parse_args(argv)
    args.scale = scale.wanted(args)  # before --calls gets its defaults: a run that names --calls is a quick one
    if args.calls is None:
        args.calls = [_DEFAULT_CALLS.get(c, 5000) for c in args.concurrency]
    elif len(args.calls) == 1:
        args.calls = args.calls * len(args.concurrency)
    elif len(args.calls) != len(args.concurrency):
        parser.error("--calls takes one number, or one per --concurrency level")
    return args


def _warmup(calls: int, concurrency: int) -> int:
    # Enough to open every keep-alive connection and load the hub's token and caches, never most of the run.
    return min(_WARMUP_MAX, max(2 * concurrency, calls // 5))


def _errors(measurements: list[Measurement]) -> list[str]:
    lines = []
    for m in measurements:
        if m.errors:
            lines.append(f"{m.mode} c={m.concurrency}: {m.errors}")
            lines += [f"    {sample}" for sample in m.error_samples]
    return lines


def _measure_all(args: argparse.Namespace, stack: Stack) -> list[list[Measurement]]:
    """Every round of every mode at every level, grouped by mode and level, in the order measured.

    Modes interleave within each round, so a slow spell on a shared machine touches them all alike, and
    each mode is measured `args.rounds` times, so one slow spell does not make a row."""
    rounds: dict[tuple[str, int], list[Measurement]] = {}
    for concurrency, calls in zip(args.concurrency, args.calls, strict=True):
        for round_number in range(1, args.rounds + 1):
            for target in stack.targets:
                warmup = _warmup(calls, concurrency)
                m = measure(target, concurrency=concurrency, calls=calls, warmup=warmup, max_seconds=args.max_seconds)
                rounds.setdefault((m.mode, concurrency), []).append(m)
                print(f"  {m.mode:<18} c={concurrency:<3} round {round_number}: {m.ok} calls in {m.seconds:.1f} s")
    if any(m.errors for runs in rounds.values() for m in runs):
        print(stack.log_tails())
    return list(rounds.values())


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    print(report.machine(args.db + (", rate counters in Redis" if args.redis else "")), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp,
        database_url(args.db, Path(tmp)) as url,
        running_stack(Path(tmp), url, args.redis) as stack,
    ):
        rounds = _measure_all(args, stack)
        agents = stack.grants
        costs = sdk_share.client_costs(stack.upstream, stack.token, stack.contact_id, args.concurrency, max(args.calls))
    timings = time_functions(args.function_seconds)
    measurements = [median_round(runs) for runs in rounds]
    baselines = [m for m in measurements if m.mode not in _GRANT_ONLY]
    print(f"\n{report.table(baselines)}\n\n{report.rounds([r for r in rounds if r[0].mode not in _GRANT_ONLY])}")
    print(f"\n{report.ratios(baselines)}\n\n{report.sdk_share(baselines, costs)}")
    print(f"\n{report.grants(measurements, agents)}\n\n{report.functions(timings)}")
    errors = _errors([m for runs in rounds for m in runs]) + scale.section(args)
    if errors:
        print("\nerrors:\n" + "\n".join(errors))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    if args.json is not None:
        written = {
            "runs": [m.as_dict() for m in measurements],  # each mode's median round, as reported
            "rounds": [[m.as_dict() for m in runs] for runs in rounds],
            "policy_functions": [t.as_dict() for t in timings],
        }
        args.json.write_text(json.dumps(written, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
