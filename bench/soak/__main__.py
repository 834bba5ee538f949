"""`python -m bench.soak [--seed N] [--duration S] [--users N] [--rate R] ...`: the soak.

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres; a
fresh database is created and dropped) and redis-server on PATH (it starts, kills and restarts
a private one). Prints the results as markdown, writes them whole to
`<out>/soak-<timestamp>.json`, and exits 1 when anything was lost, duplicated, reordered,
answered with a 5xx or never confirmed (2 when it cannot run here). Same seed, same plan: the
sends, their transports and retries, the sockets aborted and the victims of the faults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from bench.cluster import ROOT, SetupError
from bench.procinfo import raise_nofile_limit
from bench.soak.plan import SoakOptions
from bench.soak.report import markdown
from bench.soak.run import Soak

logger = logging.getLogger("bench.soak")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seed", type=int, help="replays a run (default: a new one, printed)")
    parser.add_argument("--quick", action="store_true", help="the bounded form CI runs")
    parser.add_argument("--duration", type=float, help="seconds of load, faults included")
    parser.add_argument("--users", type=int)
    parser.add_argument("--groups", type=int)
    parser.add_argument("--rate", type=float, help="sends per second")
    parser.add_argument("--redis-outage", type=float, help="seconds")
    parser.add_argument("--slow-pause", type=float, help="seconds")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a local Redis Cluster of three primaries; the outage kills one of them",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def _options(args: argparse.Namespace) -> SoakOptions:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    base = SoakOptions.quick(seed) if args.quick else SoakOptions(seed=seed)
    given = {
        name: getattr(args, name)
        for name in ("duration", "users", "groups", "rate", "redis_outage", "slow_pause")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(base, **given, redis_cluster=args.redis_cluster)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    raise_nofile_limit()
    try:
        options = _options(args)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    logger.info("soak with seed %s (replay it with --seed %s)", options.seed, options.seed)
    soak = Soak(options, args.out)
    try:
        results = uvloop.run(soak.run())
    except SetupError as exc:
        logger.error("%s", exc)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{soak.stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    sys.stdout.write(markdown(results))
    sys.stdout.write(f"\nresults: {path}\nserver logs: {results['logs']}\n")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
