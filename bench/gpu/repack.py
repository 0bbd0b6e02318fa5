"""Rewrite wheels with stored (uncompressed) members, so that one xz pass over the whole bundle compresses them.

Why: a wheel's members are deflated one by one, which leaves vLLM's CUDA kernels large (the FA3 library deflates
to 38 MB, xz over the stored file to 11 MB); device calls carry at most 64 MiB each, so the smaller bundle is
fewer calls, and device time. A stored wheel is still a valid wheel: pip installs it as it is.
Usage: python3 bench/gpu/repack.py SRC_DIR DST_DIR
"""

import sys
import zipfile
from pathlib import Path


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(src.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(dst / wheel.name, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                data = zin.read(info)
                info.compress_type = zipfile.ZIP_STORED
                zout.writestr(info, data)


if __name__ == "__main__":
    main()
