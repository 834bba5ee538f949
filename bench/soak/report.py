"""The soak's results as markdown: what `make soak` prints and docs/RELIABILITY.md records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.soak.verdict import COLUMNS

Json = dict[str, Any]
ANOMALIES_SHOWN = 40


def _cells(values: Sequence[object]) -> str:
    return "| " + " | ".join(str(value) for value in values) + " |"


def markdown(results: Json) -> str:
    options = results["options"]
    machine = results["machine"]
    verdict = "PASSED" if results["passed"] else "FAILED"
    lines = [
        f"### Soak {results['started_at']}: {verdict}",
        "",
        f"`python -m bench.soak --seed {options['seed']} --duration {options['duration']:g} "
        f"--users {options['users']} --groups {options['groups']} --rate {options['rate']:g}` "
        f"({results['chats']['private']} private chats, {results['chats']['group']} groups of "
        f"{options['users'] // options['groups']}; {results['seconds']:.0f} s in all)",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB; PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}. Load: {results['load']['busy_before_pct']} % busy before, "
        f"{results['load']['busy_during_pct']} % during; load average "
        f"{results['load']['average_at_start']} at the start, "
        f"{results['load']['average_at_end']} at the end.",
        "",
        _cells(["phase", "s", *COLUMNS, "notes"]),
        _cells(["---"] * (len(COLUMNS) + 3)),
    ]
    for phase in results["phases"]:
        notes = ", ".join(f"{key} {value}" for key, value in phase["notes"].items())
        row = phase["counts"]
        counts = [row.get(column, 0) for column in COLUMNS]
        lines.append(_cells([phase["name"], f"{phase['seconds']:.0f}", *counts, notes]))
    totals = results["totals"]
    counts = [totals.get(column, 0) for column in COLUMNS]
    lines.append(_cells(["**total**", f"{results['seconds']:.0f}", *counts, ""]))
    slow = results["slow_consumer"]
    sockets = results["sockets"]
    ended = slow.get("ended_after_reading_again_s")
    server_ended = (
        f"ended its connection after {slow['server_ended_after_s']} s ({slow['server_ended_how']})"
        if slow.get("server_ended_after_s") is not None
        else "did not end its connection while it did not read"
    )
    lines += [
        "",
        f"Slow consumer: user{slow['user']} stopped reading for {options['slow_pause']:g} s. "
        f"The server stopped sending to it after {slow.get('served_for_s')} s (when the last "
        f"event it got was committed) and {server_ended}. "
        + (
            f"When it read again it got {slow.get('events_after_reading_again')} more events, "
            f"then its socket ended with close code {slow['close_code']} "
            if ended is not None
            else "Its socket never ended "
        )
        + f"(expected: one of {slow['expected']}).",
        f"Sockets: {sockets['opened']} opened (each resumed; {sockets['failed attempts']} "
        "attempts failed, to a process down or starting), "
        f"{sockets['aborted']} aborted by the "
        f"soak; {sockets['with a gap']} with a gap, {sockets['with a duplicate']} with a "
        f"duplicate, {sockets['out of order']} out of order; other ends by close code: "
        f"{sockets['other close codes']}.",
    ]
    if results["problems"]:
        lines += ["", "Problems:", ""]
        lines += [f"- {problem}" for problem in results["problems"]]
    anomalies = results["anomalies"]
    if anomalies:
        keys = ["kind", "user", "chat_id", "chat", "seqs", "phase", "socket", "api"]
        keys += ["resumed_from", "resumed_to", "first_on_socket", "next_seq", "socket_opened_phase"]
        lines += ["", f"Deliveries that went wrong ({len(anomalies)}):", ""]
        lines += [_cells(keys), _cells(["---"] * len(keys))]
        for anomaly in anomalies[:ANOMALIES_SHOWN]:
            lines.append(_cells([anomaly.get(key, "") for key in keys]))
        if len(anomalies) > ANOMALIES_SHOWN:
            lines.append(f"\n... and {len(anomalies) - ANOMALIES_SHOWN} more in the results file.")
    return "\n".join(lines) + "\n"
