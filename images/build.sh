#!/usr/bin/env bash
# Build the stage images with podman (or docker): what `make images` runs.
#
#   images/build.sh [options] [IMAGE ... | all]            (default: all)
#     --flavour auto|cpu     auto (default): GPU stages on the CUDA base, the analyzer on the Debian base;
#                            cpu: every image on the Debian base (needs --deps venv for GPU stages)
#     --deps lock|venv       lock (default): images/<image>/requirements.lock, fetched from the package index;
#                            venv: exactly what is installed in --venv, from wheels made on this host, offline
#     --venv DIR             the environment --deps venv copies (default .venv)
#     --tag TAG              image tag (default: the project version; "<version>-host" with --deps venv)
#     --lock-file FILE       where to record what was built (default images/images.lock)
#     --engine podman|docker
#     --no-check             skip the static checks (python -m images.check) run first
#
# Images are named localhost/forgetting-llms/<image>:<tag>. Each carries the project version and git commit as
# labels and as the FLLM_* variables the stages record in their manifests. Then `make sifs` (images/to-sif.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=images/common.sh
. "$here/common.sh"

flavour=auto deps=lock venv="$repo/.venv" tag="" lock_file="$here/images.lock" check=1
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --flavour) flavour="$2"; shift 2 ;;
    --deps) deps="$2"; shift 2 ;;
    --venv) venv="$(cd "$2" && pwd)"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --lock-file) lock_file="$2"; shift 2 ;;
    --engine) FLLM_ENGINE="$2"; shift 2 ;;
    --no-check) check=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) die "build.sh: unknown option $1" ;;
    *) images+=("$1"); shift ;;
  esac
done
case "$flavour" in auto|cpu) ;; *) die "build.sh: --flavour is auto or cpu" ;; esac
case "$deps" in lock|venv) ;; *) die "build.sh: --deps is lock or venv" ;; esac

py="${FLLM_PYTHON:-}"
[ -n "$py" ] || { [ -x "$venv/bin/python" ] && py="$venv/bin/python"; } || py=python3
cd "$repo"
engine="$(pick_engine)"
[ "$check" = 0 ] || "$py" -m images.check >/dev/null || { "$py" -m images.check; die "build.sh: fix the problems above first"; }

# stage images: name gpu (from stages/registry.py)
mapfile -t table < <("$py" -c 'from images.project import stage_images
for i in stage_images(): print(i.name, int(i.gpu))')
if [ ${#images[@]} -eq 0 ] || [ "${images[0]}" = all ]; then
  images=(); for row in "${table[@]}"; do images+=("${row%% *}"); done
fi
is_gpu() { local row; for row in "${table[@]}"; do [ "${row%% *}" = "$1" ] && { [ "${row##* }" = 1 ]; return; }; done; die "build.sh: unknown image $1"; }
flavour_of() {  # image -> cuda|cpu, refusing what the options cannot build
  local gpu=0 fl=cpu
  is_gpu "$1" && gpu=1
  [ "$gpu" = 1 ] && [ "$flavour" = auto ] && fl=cuda
  [ "$fl" = cuda ] && [ "$deps" = venv ] && die "build.sh: --deps venv builds CPU images: add --flavour cpu"
  [ "$gpu" = 1 ] && [ "$fl" = cpu ] && [ "$deps" = lock ] \
    && die "build.sh: $1's lock pins CUDA torch; a CPU build of a GPU stage needs --deps venv"
  echo "$fl"
}
for name in "${images[@]}"; do flavour_of "$name" >/dev/null; done

version="$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
commit=unknown
if git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
  commit="$(git -C "$repo" rev-parse HEAD)"
  [ -z "$(git -C "$repo" status --porcelain -- pyproject.toml README.md stages)" ] || commit="$commit-dirty"
fi
[ -n "$tag" ] || { [ "$deps" = venv ] && tag="$version-host" || tag="$version"; }
echo "build: $engine, version $version, commit $commit, tag $tag, deps $deps"

work="$(mktemp -d "${TMPDIR:-/var/tmp}/fllm-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
wheels="${FLLM_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/forgetting-llms/wheelhouse}"

# The project's sources as the image gets them (tracked and untracked, never ignored files), and its wheel.
mkdir -p "$work/src" "$work/project"
if git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do  # deleted files are still listed until the deletion is committed
    if [ -e "$f" ]; then cp --parents "$f" "$work/src/"; fi
  done < <(git -C "$repo" ls-files -co --exclude-standard -z -- pyproject.toml README.md stages)
else
  cp -r pyproject.toml README.md stages "$work/src/"
fi
"$py" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/project" "$work/src" >/dev/null
src_digest="$(cd "$work/src" && find . -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum | cut -c1-64)"

engine_build() {  # context tag [build args...]
  local ctx="$1" ref="$2"; shift 2
  local extra=() previous=""
  previous="$(image_id "$engine" "$ref" 2>/dev/null || true)"
  if [ "$engine" = podman ]; then
    # Local bases are never pulled. Fetches during the build trust the host's CA bundle (a private CA on
    # proxied networks) without copying it into the image.
    extra+=(--pull=never)
    [ "$deps" = lock ] && [ -f /etc/ssl/certs/ca-certificates.crt ] \
      && extra+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
  # shellcheck disable=SC2046
  "$engine" build $(build_flags "$engine") "${extra[@]}" -t "$ref" "$@" "$ctx"
  # The image this tag named before is now untagged: drop it (its layers shared with the new one stay).
  if [ -n "$previous" ] && [ "$previous" != "$(image_id "$engine" "$ref")" ]; then
    "$engine" rmi "$previous" >/dev/null 2>&1 || true
  fi
}

ensure_base() {  # flavour -> prints the base ref
  local fl="$1" os_image ref="$FLLM_IMAGE_PREFIX/base:$version-$1"
  if [ "$fl" = cpu ]; then
    os_image="$FLLM_DEBIAN_BASE"
    image_exists "$engine" "$os_image" || "$here/make-base.sh" --engine "$engine" >&2
  else
    os_image="$FLLM_CUDA_BASE"
    image_exists "$engine" "$os_image" || "$engine" pull "$os_image" >&2
  fi
  engine_build "$here/base" "$ref" --build-arg "OS_IMAGE=$os_image" >&2
  echo "$ref"
}

declare -A bases=()
flash_attn_ref=""
for name in "${images[@]}"; do
  fl="$(flavour_of "$name")"
  [ -n "${bases[$fl]:-}" ] || bases[$fl]="$(ensure_base "$fl")"
  base="${bases[$fl]}"
  [ -n "$base" ] || die "build.sh: no $fl base image"

  ctx="$work/ctx-$name"
  mkdir -p "$ctx/deps"
  cp "$here/$name/Dockerfile" "$ctx/Dockerfile"
  cp -r "$work/project" "$ctx/project"
  extras="$("$py" -c "from images.project import image_extras; from pathlib import Path; print(' '.join(image_extras(Path('images/$name/Dockerfile'))))")"
  args=(--build-arg "BASE=$base" --build-arg "FLLM_VERSION=$version" --build-arg "FLLM_GIT_COMMIT=$commit")
  if [ "$deps" = venv ]; then
    echo "build: [${SECONDS}s] wheels for $name"
    "$py" -m images.wheelhouse --venv "$venv" --extras "$extras" --wheels "$wheels" --out "$ctx"
    args+=(--build-arg FLLM_OFFLINE=1)
  else
    cp "$here/$name/requirements.lock" "$ctx/requirements.lock"
  fi
  # shellcheck disable=SC2016  # a literal ${FLASH_ATTN} in the Dockerfile
  if grep -q 'FROM ${FLASH_ATTN}' "$ctx/Dockerfile"; then
    if [ "$fl" = cuda ]; then
      if [ -z "$flash_attn_ref" ]; then
        flash_attn_ref="$FLLM_IMAGE_PREFIX/flash-attn:$tag-cuda"
        fctx="$work/ctx-flash-attn"; mkdir -p "$fctx/deps"
        cp "$here/flash-attn/Dockerfile" "$here/flash-attn/requirements.lock" "$here/flash-attn/flash-attn.lock" "$fctx/"
        engine_build "$fctx" "$flash_attn_ref" --build-arg "BASE=$base"
      fi
      args+=(--build-arg "FLASH_ATTN=$flash_attn_ref" --build-arg "FLASH_ATTN_ID=$(image_id "$engine" "$flash_attn_ref")")
    else
      # the base's wheel folder is empty: no flash-attention on CPU
      args+=(--build-arg "FLASH_ATTN=$base" --build-arg "FLASH_ATTN_ID=$(image_id "$engine" "$base")")
    fi
  fi
  # A CPU build of a GPU stage keeps the stage's CPU default engine (no vLLM, no verl at scale).
  [ "$fl" = cpu ] && grep -q '^ARG DEFAULT_ENGINE=' "$ctx/Dockerfile" && args+=(--build-arg "DEFAULT_ENGINE=")

  ref="$FLLM_IMAGE_PREFIX/$name:$tag"
  inputs="$( { (cd "$ctx" && sha256sum Dockerfile requirements.lock); echo "$src_digest"; image_id "$engine" "$base"; } | sha256sum | cut -c1-64)"
  args+=(--build-arg "FLLM_IMAGE=$ref" --build-arg "FLLM_IMAGE_DIGEST=build-inputs:sha256:$inputs")
  args+=(--label "io.forgetting-llms.flavour=$fl" --label "io.forgetting-llms.deps=$deps")
  echo "build: [${SECONDS}s] $ref ($fl, deps $deps)"
  engine_build "$ctx" "$ref" "${args[@]}"
  echo "build: [${SECONDS}s] $ref built"
  os_ref="$("$engine" image inspect --format '{{index .Labels "io.forgetting-llms.os-image"}}' "$base")"
  "$py" -m images.record --lock-file "$lock_file" --engine "$engine" --image "$name:$tag" --ref "$ref" \
    --base-ref "$os_ref" --flavour "$fl" --deps "$deps" --version "$version" --commit "$commit" \
    --inputs-digest "sha256:$inputs" --python-lock "$ctx/requirements.lock"
done
