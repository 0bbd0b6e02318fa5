"""Run every hostile program of hostile_programs.py through the graders, as whoever runs this, and report.

Run by test_sandbox_unprivileged as an unprivileged user and by tests/images/test_sandbox_podman.py inside a stage
image (no pytest there). Prints one JSON object: the uid, the sandbox's report, and per attack what went wrong
(empty: contained). Usage: python -m tests.envs.unprivileged_probe <sentinel folder> [auto|namespaces|none [NAME,...]]
(the names pick some attacks; default all).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from stages.envs import GradeOptions, Graders, SandboxLimits
from tests.envs.hostile_programs import check_all

LIMITS = SandboxLimits(wall_s=2.0, cpu_s=2, memory_mb=512)


def main() -> None:
    sentinel, mode = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "auto")
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    os.environ["HF_TOKEN"] = "hf-secret-probe"
    graders = Graders(GradeOptions(code_limits=LIMITS, gem_blocklist=False, isolation=mode))
    try:
        report = graders.code.sandbox.start()
        results = check_all(graders, sentinel, LIMITS.wall_s, names)
    finally:
        graders.close()
    print(json.dumps({"uid": os.getuid(), "report": report, "results": results}))


if __name__ == "__main__":
    main()
