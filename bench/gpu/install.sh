#!/usr/bin/env bash
# There (the GPU machine): join the parts, install the wheels into /tmp/site with --no-deps (the machine's torch,
# numpy and CUDA libraries stay), build pycosat for this Python. Usage: bench/gpu/install.sh PARTS_DIR
# STREAM_PARTS=N: start it with the first of N parts; it waits for each part's .ok marker (see below).
# Afterwards: export PYTHONPATH=/tmp/site:$PWD (the project runs from the checkout).
set -euo pipefail
parts=${1:?folder holding bundle.part* and bundle.sha256}
dest=/tmp/bundle; mkdir -p "$dest"
if [ -n "${STREAM_PARTS:-}" ]; then
    # Streamed: started with the first part, it unpacks each part as it arrives (a later call moves part NN in and
    # then touches bundle.partNN.ok), so the unpacking overlaps the transfers; the xz bundle is one stream.
    for i in $(seq -f %02g 0 $((STREAM_PARTS - 1))); do
        until [ -f "$parts/bundle.part$i.ok" ]; do sleep 1; done
        cat "$parts/bundle.part$i"
    done | tee /tmp/bundle.tar | xz -d | tar -x -C "$dest"
else
    cat "$parts"/bundle.part* > /tmp/bundle.tar
fi
if [ -f "$parts/bundle.sha256" ]; then echo "$(cat "$parts/bundle.sha256")  /tmp/bundle.tar" | sha256sum -c -; fi
if [ -z "${STREAM_PARTS:-}" ]; then
    case $(head -c 6 /tmp/bundle.tar | od -An -c | tr -d ' ') in
        *7zXZ*) xz -d -T0 < /tmp/bundle.tar | tar -x -C "$dest" ;;   # bundle.sh's xz bundle
        *) tar -xf /tmp/bundle.tar -C "$dest" ;;
    esac
fi
# wheels sent beside the bundle (added after it was made) install with it
cp "$parts"/*.whl "$dest/whl/" 2>/dev/null || true
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --ignore-requires-python --target /tmp/site "$dest"/whl/*.whl
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dest/built" "$dest"/sdist/*.tar.gz
python3 -m pip install -q --no-index --no-deps --no-cache-dir --target /tmp/site "$dest"/built/*.whl
# the math grader's worker runs `python -I` (PYTHONPATH ignored): site-packages must name /tmp/site itself
echo /tmp/site > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/zz_fllm_site.pth"
PYTHONPATH=/tmp/site python3 -c "import vllm, verl, ray, transformers, torch; print('vllm', vllm.__version__, 'verl', \
verl.__version__, 'ray', ray.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
