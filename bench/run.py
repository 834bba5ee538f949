"""`python -m bench.run [--quick] [--only NAME] [--out DIR]`: run the benchmark scenarios.

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres; a
fresh database per scenario is created and dropped) and Redis (a private redis-server is
started when the binary is on PATH, else BENCH_REDIS_URL / REDIS_URL is used). Writes
`<out>/<timestamp>.json` and `.md`; a full run of every scenario also refreshes the table in
docs/PERFORMANCE.md. Exits 1 when a scenario breaks (an error, lost or duplicated deliveries),
never because a goal was missed: the results say that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.ceiling import add_same_run_fractions
from bench.client import HttpImpl, http_client
from bench.cluster import (
    DEFAULT_POSTGRES_URL,
    ROOT,
    Cluster,
    ClusterSpec,
    Redis,
    SetupError,
    check_postgres,
    running_cluster,
)
from bench.context import FULL, QUICK, Context, Sizes
from bench.measure import Outcome
from bench.procinfo import machine_cpu_seconds, machine_info, raise_nofile_limit
from bench.report import markdown, update_docs
from bench.scenarios import SCENARIOS, Definition, validation

logger = logging.getLogger("bench")

DOCS = ROOT / "docs" / "PERFORMANCE.md"
WS_SEND_QUEUE = 8192  # the bench clients never fall behind on purpose
SCENARIO_TIMEOUT = {False: 300.0, True: 90.0}  # full, quick


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run for CI")
    parser.add_argument(
        "--only",
        action="append",
        choices=[definition.name for definition in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--http", choices=["aiohttp", "httpx"], default="aiohttp", help="HTTP client of the load"
    )
    parser.add_argument("--no-docs", action="store_true", help="leave docs/PERFORMANCE.md alone")
    return parser.parse_args(argv)


def redis_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "external"
    output = subprocess.run(  # noqa: S603 (the redis-server found on PATH, fixed arguments)
        [binary, "--version"], capture_output=True, text=True, check=False
    )
    for part in output.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return output.stdout.strip()


async def background_busy(seconds: float = 2.0) -> float:
    """How busy the machine is before a scenario starts (other work on a shared machine)."""
    busy, total = machine_cpu_seconds()
    await asyncio.sleep(seconds)
    busy_after, total_after = machine_cpu_seconds()
    return round((busy_after - busy) / max(total_after - total, 1e-9) * 100, 1)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes: Sizes = QUICK if args.quick else FULL
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out: Path = args.out
        self.log_dir = self.out / "logs" / self.stamp
        self.admin_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL
        (self.log_dir / "redis").mkdir(parents=True, exist_ok=True)
        self.redis = Redis(self.log_dir / "redis", os.environ.get("BENCH_REDIS_URL"))
        self.http_impl: HttpImpl = args.http

    @asynccontextmanager
    async def cluster(self, spec: ClusterSpec, label: str) -> AsyncIterator[Cluster]:
        async with running_cluster(
            spec,
            workers=self.args.workers,
            admin_url=self.admin_url,
            redis=self.redis,
            log_dir=self.log_dir,
            label=label,
            http_impl=self.http_impl,
            ws_send_queue=WS_SEND_QUEUE,
        ) as cluster:
            yield cluster

    async def run_one(self, definition: Definition, index: int, shared: Cluster | None) -> Outcome:
        outcome = Outcome(definition.name, definition.title)
        outcome.details["background_busy_pct"] = await background_busy()
        started = time.monotonic()
        logger.info("scenario %s: %s", definition.name, definition.title)
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT[self.sizes.quick]):
                if definition.run is None:
                    validation(self.sizes, outcome)
                elif shared is not None:
                    await self._scenario(definition, index, shared, outcome)
                else:
                    async with self.cluster(definition.spec, definition.name) as cluster:
                        await self._scenario(definition, index, cluster, outcome)
        except Exception as exc:
            logger.exception("scenario %s failed", definition.name)
            outcome.error = f"{type(exc).__name__}: {str(exc)[:500]}"
        outcome.seconds = time.monotonic() - started
        logger.info(
            "scenario %s done in %.0f s%s",
            definition.name,
            outcome.seconds,
            f" (ERROR: {outcome.error})" if outcome.error else "",
        )
        return outcome

    async def _scenario(
        self, definition: Definition, index: int, cluster: Cluster, outcome: Outcome
    ) -> None:
        assert definition.run is not None
        http = http_client(self.http_impl, max_connections=64)
        try:
            context = Context(cluster, self.sizes, http, base_id=(index + 1) * 1_000_000)
            await definition.run(context, outcome)
        finally:
            await http.close()

    async def run(self) -> dict[str, Any]:
        started_at = datetime.now(UTC)
        started = time.monotonic()
        machine = machine_info()
        definitions = [d for d in SCENARIOS if not self.args.only or d.name in self.args.only]
        needs_servers = any(d.run is not None for d in definitions)
        if needs_servers:
            machine["postgresql"] = await check_postgres(self.admin_url)
            await self.redis.start()
            machine["redis"] = redis_version() if self.redis.private else "external"
        outcomes: list[Outcome] = []
        try:
            if self.sizes.quick and needs_servers:
                # One cluster for every scenario: starting API processes costs seconds each.
                # A scenario that needs more API processes than it has gets its own.
                spec = ClusterSpec(fake_llm=any(d.spec.fake_llm for d in definitions))
                async with contextlib.AsyncExitStack() as stack:
                    shared: Cluster | None = None
                    for index, definition in enumerate(SCENARIOS):
                        if definition not in definitions:
                            continue
                        if definition.spec.apis > spec.apis:
                            outcomes.append(await self.run_one(definition, index, None))
                            continue
                        if shared is None:
                            shared = await stack.enter_async_context(self.cluster(spec, "quick"))
                        outcomes.append(await self.run_one(definition, index, shared))
            else:
                for index, definition in enumerate(SCENARIOS):
                    if definition in definitions:
                        outcomes.append(await self.run_one(definition, index, None))
        finally:
            await self.redis.stop()
        add_same_run_fractions(outcomes, self.sizes.quick)
        return {
            "started_at": started_at.isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1),
            "mode": "quick" if self.sizes.quick else "full",
            "machine": machine,
            "options": {
                "workers": self.args.workers,
                "http_client": self.http_impl,
                "only": self.args.only,
            },
            "sizes": asdict(self.sizes),
            "scenarios": [outcome.as_dict() for outcome in outcomes],
        }


def _write(runner: Runner, results: dict[str, Any]) -> tuple[Path, str]:
    runner.out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if runner.sizes.quick else ""
    json_path = runner.out / f"{runner.stamp}{suffix}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    json_path.with_suffix(".md").write_text(f"# Benchmark results\n\n{table}")
    return json_path, table


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    raise_nofile_limit()
    runner = Runner(args)
    try:
        results = uvloop.run(runner.run())
    except SetupError as exc:
        logger.error("%s", exc)
        return 2
    json_path, table = _write(runner, results)
    complete = not args.only and not args.quick
    if complete and not args.no_docs:
        with contextlib.suppress(OSError):
            relative = json_path.relative_to(ROOT)
            if update_docs(DOCS, table, str(relative)):
                logger.info("updated %s", DOCS.relative_to(ROOT))
    sys.stdout.write(table)
    sys.stdout.write(f"\nresults: {json_path} and {json_path.with_suffix('.md')}\n")
    broken = [s for s in results["scenarios"] if s["error"] or s["problems"]]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
