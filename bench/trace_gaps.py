"""Where a GPU idles inside a profiled step: gaps between kernels, and what the host was doing meanwhile.

Why: a kernel table says how long the GPU worked, not why it waited. Reading the Chrome trace that
``torch.profiler`` exports, this lists the GPU's idle gaps (no kernel or copy running on any stream) and, for the
largest, the innermost host operations that overlap them, which is usually the cause (a sync, a slow Python loop,
an allocator call). Usage: ``python bench/trace_gaps.py trace.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}


def gpu_busy_intervals(events: list[dict]) -> list[tuple[float, float]]:
    spans = sorted((e["ts"], e["ts"] + e.get("dur", 0)) for e in events if e.get("cat") in GPU_CATS and "ts" in e)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def summarize(trace: dict, top: int = 15, min_gap_us: float = 200.0) -> str:
    events = trace.get("traceEvents", trace) if isinstance(trace, dict) else trace
    busy = gpu_busy_intervals(events)
    if not busy:
        return "no GPU activity in the trace\n"
    t0, t1 = busy[0][0], busy[-1][1]
    busy_us = sum(b - a for a, b in busy)
    gaps = [(busy[i][1], busy[i + 1][0]) for i in range(len(busy) - 1) if busy[i + 1][0] - busy[i][1] >= min_gap_us]
    idle_us = sum(b - a for a, b in gaps)
    host = [e for e in events if e.get("cat") in ("cpu_op", "user_annotation", "python_function", "cuda_runtime")
            and "dur" in e]
    head = (f"GPU span {(t1 - t0) / 1e3:.1f} ms, busy {busy_us / 1e3:.1f} ms ({100 * busy_us / (t1 - t0):.1f}%), "
            f"{len(gaps)} gaps >= {min_gap_us / 1e3:.1f} ms totalling {idle_us / 1e3:.1f} ms")
    lines = [head, ""]
    for a, b in sorted(gaps, key=lambda g: g[0] - g[1])[:top]:
        overlapping = [e for e in host if e["ts"] < b and e["ts"] + e["dur"] > a]
        names: dict[str, float] = {}
        for e in overlapping:
            over = min(b, e["ts"] + e["dur"]) - max(a, e["ts"])
            names[e["name"]] = max(names.get(e["name"], 0.0), over)
        shortest = sorted(names.items(), key=lambda kv: kv[1])[:6]
        lines.append(f"gap {(b - a) / 1e3:7.2f} ms at +{(a - t0) / 1e3:8.1f} ms: "
                     + "; ".join(f"{n[:60]} ({d / 1e3:.1f})" for n, d in shortest))
    return "\n".join(lines) + "\n"


def main() -> None:
    print(summarize(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
