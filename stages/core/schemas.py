"""Write every stage's manifest JSON Schema to ``manifests/schema/<stage>.json`` (``make schemas``).

The committed schemas are documentation for people and editors; a test fails when they are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stages.core.describe import json_schema


def render_all() -> dict[str, str]:
    from stages.registry import STAGES, load_stage

    return {s.name: json.dumps(json_schema(load_stage(s.name)), indent=2) + "\n" for s in STAGES}


def main(out_dir: str = "manifests/schema") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / f"{name}.json").write_text(text)
        print(f"wrote {out / f'{name}.json'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
