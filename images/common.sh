# shellcheck shell=bash
# Shared by the image scripts (sourced, not run): names, the container engine and the flags that work with it.
#
# Why the podman flags: on the project's CI machines cgroups are in hybrid v1/v2 mode, where podman's default
# OCI isolation and crun both fail; chroot isolation for builds and runc with explicit ulimits for runs work
# there and on ordinary workstations alike (reference/infra.md §3.3).

FLLM_DEBIAN_SUITE="${FLLM_DEBIAN_SUITE:-bookworm}"
# The local Debian base made by make-base.sh (no registry): a name in local storage, never pulled.
FLLM_DEBIAN_BASE="${FLLM_DEBIAN_BASE:-localhost/forgetting-llms/debian:bookworm-minbase}"
# The CUDA base of the GPU images, pinned by tag; the digest each build resolved goes to images.lock.
FLLM_CUDA_BASE="${FLLM_CUDA_BASE:-nvidia/cuda:13.0.2-devel-ubuntu24.04}"
FLLM_IMAGE_PREFIX="${FLLM_IMAGE_PREFIX:-localhost/forgetting-llms}"

die() { echo "$*" >&2; exit 1; }

# podman where it exists, else a docker whose daemon answers; FLLM_ENGINE forces one.
pick_engine() {
  if [ -n "${FLLM_ENGINE:-}" ]; then
    command -v "$FLLM_ENGINE" >/dev/null || die "container engine $FLLM_ENGINE is not installed"
    echo "$FLLM_ENGINE"; return
  fi
  if command -v podman >/dev/null; then echo podman; return; fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; return; fi
  die "neither podman nor a running docker was found: install podman (apt-get install podman buildah runc)"
}

image_exists() {  # engine ref
  "$1" image inspect "$2" >/dev/null 2>&1
}

image_id() {  # engine ref
  "$1" image inspect --format '{{.Id}}' "$2"
}

# The registry digest a pulled image was resolved to (empty for images made locally).
image_repo_digest() {  # engine ref
  "$1" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$2" 2>/dev/null | head -1 | sed 's/.*@//'
}

# podman: chroot isolation (hybrid cgroups), no pulls for local bases. docker: BuildKit for RUN --mount.
build_flags() {  # engine
  case "$1" in
    podman) echo "--isolation=chroot ${FLLM_BUILD_FLAGS:-}" ;;
    docker) echo "${FLLM_BUILD_FLAGS:-}" ;;
  esac
}

run_flags() {  # engine
  case "$1" in
    podman) echo "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 ${FLLM_RUN_FLAGS:-}" ;;
    docker) echo "${FLLM_RUN_FLAGS:-}" ;;
  esac
}

# The first Debian archive URL apt uses for SUITE (deb822 .sources or one-line .list), security archives excluded.
debian_mirror_from_apt() {  # suite
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris=$i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { n=split($i, a, /[ \t]+/); for (j = 2; j <= n; j++) if (a[j] == s) ok=1 }
        }
        if (ok && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done | head -1 | grep . && return
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk -v s="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { if ($(i+1) == s) print $i; break } }' \
    | head -1
}
