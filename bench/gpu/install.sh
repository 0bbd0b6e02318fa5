#!/usr/bin/env bash
# There (the GPU machine): join the parts, install the wheels into /tmp/site with --no-deps (the machine's torch,
# numpy and CUDA libraries stay), build pycosat for this Python. Usage: bench/gpu/install.sh PARTS_DIR
# Afterwards: export PYTHONPATH=/tmp/site:$PWD (the project runs from the checkout).
set -euo pipefail
parts=${1:?folder holding bundle.part* and bundle.sha256}
dest=/tmp/bundle; mkdir -p "$dest"
cat "$parts"/bundle.part* > /tmp/bundle.tar
if [ -f "$parts/bundle.sha256" ]; then echo "$(cat "$parts/bundle.sha256")  /tmp/bundle.tar" | sha256sum -c -; fi
case $(head -c 6 /tmp/bundle.tar | od -An -c | tr -d ' ') in
    *7zXZ*) xz -d -T0 < /tmp/bundle.tar | tar -x -C "$dest" ;;   # bundle.sh's xz bundle
    *) tar -xf /tmp/bundle.tar -C "$dest" ;;
esac
# wheels sent beside the bundle (added after it was made) install with it
cp "$parts"/*.whl "$dest/whl/" 2>/dev/null || true
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --ignore-requires-python --target /tmp/site "$dest"/whl/*.whl
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dest/built" "$dest"/sdist/*.tar.gz
python3 -m pip install -q --no-index --no-deps --no-cache-dir --target /tmp/site "$dest"/built/*.whl
# the math grader's worker runs `python -I` (PYTHONPATH ignored): site-packages must name /tmp/site itself
echo /tmp/site > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/zz_fllm_site.pth"
PYTHONPATH=/tmp/site python3 -c "import vllm, verl, ray, transformers, torch; print('vllm', vllm.__version__, 'verl', \
verl.__version__, 'ray', ray.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
