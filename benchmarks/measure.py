"""Shared helpers of the benchmark scripts: fresh-subprocess measurement and tables.

Each measured step runs in a fresh Python process (``python SCRIPT --child
...``), so peak RSS is that step's own: ``resource.getrusage(RUSAGE_SELF)
.ru_maxrss`` read at the end of the child, next to the RSS right after the
imports (the baseline). The child prints one JSON line that the parent reads.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
MARK = "BENCH-RESULT "


def current_rss() -> int:
    """Resident set size now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Phases:
    """Times consecutive phases in a child and records the peak RSS reached by the end of each."""

    def __init__(self) -> None:
        self.baseline_rss = current_rss()
        self.baseline_peak = peak_rss()
        self.rows: list[dict[str, Any]] = []
        self._t = time.perf_counter()
        self._start = self._t

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append({"phase": name, "seconds": now - self._t, "peak_rss": peak_rss(),
                          "rss": current_rss()})
        self._t = now

    def report(self, **extra: Any) -> None:
        out = {"baseline_rss": self.baseline_rss, "baseline_peak": self.baseline_peak,
               "seconds": time.perf_counter() - self._start, "peak_rss": peak_rss(),
               "phases": self.rows, **extra}
        print(MARK + json.dumps(out), flush=True)


def run_child(script: Path, args: Sequence[str], env: dict[str, str] | None = None,
              timeout: float = 600) -> dict[str, Any]:
    """Runs ``python SCRIPT --child ARGS`` in a fresh process (environment ``env``, default ours)."""
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, str(script), "--child", *args], capture_output=True, text=True,
                       env=full_env, timeout=timeout)
    for line in r.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"{script.name} child failed (exit {r.returncode}):\n{r.stderr[-3000:]}{r.stdout[-2000:]}")


def repeat(fn: Callable[[], dict[str, Any]], runs: int) -> tuple[float, dict[str, Any]]:
    """Median seconds over runs, and the result with the highest peak RSS (``all_seconds`` added)."""
    results = [fn() for _ in range(runs)]
    worst = dict(max(results, key=lambda r: r["peak_rss"]), all_seconds=[r["seconds"] for r in results])
    return statistics.median(r["seconds"] for r in results), worst


def spread(secs: float, result: dict[str, Any]) -> str:
    """"median s (min-max)" over the runs."""
    times = result["all_seconds"]
    return f"{secs:.2f} s ({min(times):.2f}-{max(times):.2f})" if len(times) > 1 else f"{secs:.2f} s"


def warm_page_cache(*paths: Path) -> None:
    """Reads the files once so that every measured run finds them in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, cells[1:])])


def verdict(value: float, limit: float) -> str:
    return "ok" if value <= limit else "OVER"
