#!/usr/bin/env bash
# Here (a machine that reaches the package index): download the wheels the GPU runs need and split them into
# parts small enough for one device call each. Usage: bench/gpu/bundle.sh OUT_DIR [PART_MB]
# Then send the parts one call at a time (each call moves its part out of the checkout) and run install.sh there.
set -euo pipefail
out=${1:?output folder}; part_mb=${2:-50}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/stage/whl" "$out/stage/sdist" "$out/parts"
plat=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux_2_31 \
         manylinux_2_34 manylinux_2_35 manylinux_2_5 manylinux1; do plat+=(--platform "${p}_x86_64"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d "$out/stage/whl" -r <(grep -v '^#' "$here/wheels.txt")
python3 -m pip download -q --no-deps --no-binary=:all: -d "$out/sdist" -r "$here/sdists.txt"
for s in "$out"/sdist/*.tar.gz; do
  case $s in *pycosat*) cp "$s" "$out/stage/sdist/" ;;   # a C extension: built there, for its Python
             *) python3 -m pip wheel -q --no-deps -w "$out/stage/whl" "$s" ;; esac
done
python3 "$here/repack.py" "$out/stage/whl" "$out/stored/whl" && cp -r "$out/stage/sdist" "$out/stored/"
tar -cf - -C "$out/stored" . | xz -T0 -6 > "$out/bundle.tar"   # about 3x smaller than the wheels as they come
split -b "${part_mb}M" -d -a 2 "$out/bundle.tar" "$out/parts/bundle.part"
sha256sum "$out/bundle.tar" | cut -d' ' -f1 > "$out/parts/bundle.sha256"
ls -l "$out/parts"
