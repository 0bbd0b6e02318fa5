#!/usr/bin/env bash
# Make the local Debian base image with debootstrap, from the Debian archive alone.
#
# Why: CI machines (and some workstations) reach the Debian archive and the Python package index but no container
# registry, so the CPU images cannot start `FROM debian:...`. A minimal Debian 12 root file system with Python 3.11
# is made here and imported into podman (or docker) storage under a local name; the stage images then build on it
# with --pull=never. Nothing is pulled from a registry.
#
#   images/make-base.sh [--engine podman|docker] [--ref REF] [--mirror URL] [--force]
#
# The mirror is the Debian archive this machine's apt already uses (its sources list), unless --mirror or
# FLLM_DEBIAN_MIRROR says otherwise. The image is left alone when it already exists (--force remakes it), so a
# test session or `make images` pays the ~90 s once per machine.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=images/common.sh
. "$here/common.sh"

ref="$FLLM_DEBIAN_BASE"
mirror="${FLLM_DEBIAN_MIRROR:-}"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) FLLM_ENGINE="$2"; shift 2 ;;
    --ref) ref="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "make-base.sh: unknown argument $1" ;;
  esac
done

engine="$(pick_engine)"
if [ "$force" = 0 ] && image_exists "$engine" "$ref"; then
  echo "make-base: $ref already exists ($engine); --force remakes it"
  exit 0
fi
command -v debootstrap >/dev/null || die "make-base: debootstrap is not installed (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || die "make-base: debootstrap needs root"

if [ -z "$mirror" ]; then
  mirror="$(debian_mirror_from_apt "$FLLM_DEBIAN_SUITE")"
  [ -n "$mirror" ] || die "make-base: no Debian mirror for $FLLM_DEBIAN_SUITE in the apt sources; pass --mirror URL"
fi

work="$(mktemp -d "${TMPDIR:-/var/tmp}/fllm-rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "make-base: debootstrap $FLLM_DEBIAN_SUITE from $mirror (about 90 s)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$FLLM_DEBIAN_SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "make-base: debootstrap failed"; }
# Package lists and downloaded .debs are build leftovers: out of the image.
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/cache/apt/*.bin
"$work/rootfs/usr/bin/python3" --version >/dev/null 2>&1 || true

tar --numeric-owner -C "$work/rootfs" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL io.forgetting-llms.debootstrap.suite=$FLLM_DEBIAN_SUITE" \
  --change "LABEL io.forgetting-llms.debootstrap.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  - "$ref" >/dev/null
echo "make-base: $ref ($(image_id "$engine" "$ref"))"
