#!/bin/sh
# Install a stage's locked dependencies, or the project itself, into /opt/venv at image build time.
#
#   install-lock deps LOCK [WHEEL_DIR...]        every pin of LOCK, hash-checked, no dependency resolution
#   install-lock project WHEEL_DIR EXTRA...      the forgetting-llms wheel, then check that EXTRA's closure is met
#
# Wheel folders (bind-mounted by the Dockerfile) are searched before the package index; with FLLM_OFFLINE=1 the
# index is never asked (CI builds from a host-made wheelhouse). --no-deps everywhere: the lock is the whole
# environment, so pip never resolves (gem-llm's conflicting antlr4 pin never comes into play).
set -eu
pip="/opt/venv/bin/python -m pip"
what="$1"; shift

links=""
offline=""
[ "${FLLM_OFFLINE:-0}" = 1 ] && offline="--no-index"

case "$what" in
  deps)
    lock="$1"; shift
    for d in "$@"; do
      [ -d "$d" ] && [ -n "$(ls "$d" 2>/dev/null)" ] && links="$links --find-links $d"
    done
    # shellcheck disable=SC2086
    $pip install --no-deps --require-hashes $offline $links -r "$lock"
    ;;
  project)
    wheels="$1"; shift
    # shellcheck disable=SC2086
    $pip install --no-deps --no-index --find-links "$wheels" forgetting-llms
    /opt/venv/bin/python /opt/fllm/bin/closure.py check "$@"
    ;;
  extra-wheels)
    # Locally built wheels (flash-attention) copied from a builder image; none is fine (CPU images).
    dir="$1"
    set -- "$dir"/*.whl
    if [ -e "$1" ]; then
      $pip install --no-deps --no-index "$@"
    else
      echo "install-lock: no extra wheels in $dir"
    fi
    ;;
  *)
    echo "install-lock: unknown command $what (deps, project, extra-wheels)" >&2
    exit 2
    ;;
esac
