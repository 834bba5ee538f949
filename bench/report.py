"""The results as Markdown, and the section of docs/PERFORMANCE.md that holds the latest run."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _status(met: object) -> str:
    if met is True:
        return "**met**"
    if met is False:
        return "**MISSED**"
    return ""


def _machine(machine: Json) -> str:
    load = machine.get("load_average_at_start") or []
    return (
        f"{machine.get('cores')} cores ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gib')} GiB memory, Linux {machine.get('kernel')}, "
        f"Python {machine.get('python')}, PostgreSQL {machine.get('postgresql')}, "
        f"Redis {machine.get('redis')}; load average at start "
        f"{' / '.join(str(value) for value in load)}"
    )


def _load_cpu(scenario: Json) -> str:
    """The busiest moment of the load generators, against the servers, in the scenario."""
    phases: list[Json] = list(scenario["details"].get("phases") or [])
    for ramp in (scenario["details"].get("ramps") or {}).values():
        phases.extend(ramp)
    if not phases:
        return ""
    busiest = max(phases, key=lambda phase: float(phase.get("load_cpu_pct", 0)))
    cpu = busiest.get("cpu_pct") or {}
    api = sum(float(value) for key, value in cpu.items() if key.startswith("api"))
    return (
        f"load generators {busiest.get('load_cpu_pct')} %, API processes {api:.0f} %, "
        f"machine {cpu.get('machine_busy_pct')} % busy (phase {busiest.get('label')})"
    )


def markdown(results: Json) -> str:
    lines = [
        f"Run of {results['started_at']} ({results['mode']}), {results['seconds']:.0f} s, on "
        f"{_machine(results['machine'])}.",
        "",
        "| Scenario | Metric | Value | Goal | Status |",
        "|---|---|---|---|---|",
    ]
    for scenario in results["scenarios"]:
        title = scenario["title"]
        if scenario["error"]:
            lines.append(f"| {title} | did not complete | {scenario['error']} | | **ERROR** |")
            continue
        for row in scenario["rows"]:
            value = row.get("text") or _value(row["value"])
            unit = row["unit"]
            lines.append(
                f"| {title} | {row['metric']} | {value} {unit} | {row['goal']} | "
                f"{_status(row['met'])} |"
            )
    lines += [
        "",
        "CPU: how busy the whole machine was (100 % = all cores) before each scenario started "
        "(other work on it), and at the scenario's busiest phase the load generators and the "
        "API processes (100 % = one core):",
        "",
    ]
    for scenario in results["scenarios"]:
        usage = _load_cpu(scenario)
        background = scenario["details"].get("background_busy_pct")
        lines.append(
            f"- {scenario['title']}: machine {background} % busy before it"
            + (f"; {usage}" if usage else "")
        )
    problems = [p for s in results["scenarios"] for p in s["problems"]]
    errors = [f"{s['title']}: {s['error']}" for s in results["scenarios"] if s["error"]]
    lines += ["", "Breakage (lost or duplicated deliveries, errors): "]
    if problems or errors:
        lines += [f"- {problem}" for problem in [*errors, *problems]]
    else:
        lines[-1] += "none."
    goals = [row for s in results["scenarios"] for row in s["rows"] if row["met"] is not None]
    missed = [row["metric"] for row in goals if row["met"] is False]
    lines += [
        "",
        f"Goals: {len(goals) - len(missed)} of {len(goals)} met"
        + (f"; missed: {'; '.join(missed)}." if missed else "."),
    ]
    return "\n".join(lines) + "\n"


def update_docs(path: Path, table: str, results_file: str) -> bool:
    """Replace the results section of docs/PERFORMANCE.md; False when the markers are gone."""
    text = path.read_text()
    pattern = re.compile(re.escape(DOCS_START) + r".*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        return False
    section = (
        f"{DOCS_START}\n\n{table}\nRaw results: `{results_file}` (not committed).\n\n{DOCS_END}"
    )
    path.write_text(pattern.sub(lambda _: section, text, count=1))
    return True
