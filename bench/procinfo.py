"""What the kernel says about processes and the machine: CPU time, resident memory, limits."""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit as far as the hard limit allows; returns the limit.
    Used as `preexec_fn` for the servers too, so thousands of sockets fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (not of its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def self_rss_kib() -> int:
    return process_rss_kib(os.getpid())


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU time of a set of processes and of the whole machine, at one moment."""

    wall: float
    processes: dict[str, float]
    machine_busy: float  # seconds of all cores not idle
    machine_total: float


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def sample_cpu(pids: dict[str, int]) -> CpuSample:
    processes: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            processes[name] = process_cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            processes[name] = 0.0
    busy, total = machine_cpu_seconds()
    return CpuSample(time.monotonic(), processes, busy, total)


def cpu_usage(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Percent of one core each process used between two samples, and the machine's busy
    percentage (100 = every core busy)."""
    wall = max(after.wall - before.wall, 1e-9)
    usage = {
        name: round((after.processes[name] - before.processes.get(name, 0.0)) / wall * 100, 1)
        for name in after.processes
    }
    total = after.machine_total - before.machine_total
    busy = after.machine_busy - before.machine_busy
    usage["machine_busy_pct"] = round(busy / total * 100, 1) if total > 0 else 0.0
    return usage


def _meminfo_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    mem = _meminfo_kib("MemTotal")
    load1, load5, load15 = os.getloadavg()
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
    }
