#!/usr/bin/env bash
# Turn built images into Apptainer SIFs through an OCI archive: what `make sifs` runs.
#
#   images/to-sif.sh [--tag TAG] [--out DIR] [--engine podman|docker] [--keep-archive] [IMAGE ... | all]
#   images/to-sif.sh --from-archive DIR [IMAGE ... | all]      (on a cluster: archives -> SIFs, no podman needed)
#
# Where podman/docker exists, each image is saved as DIR/<image>.oci.tar (docker: <image>.docker.tar). Where
# Apptainer exists (a cluster login or compute node), each archive becomes DIR/<image>.sif with its sha256 beside
# it in DIR/<image>.sif.sha256 (job scripts pass it as APPTAINERENV_FLLM_IMAGE_DIGEST without rehashing a
# multi-GB file). Without Apptainer the archives are left for you to copy to the cluster and convert there with
# --from-archive. DIR defaults to dist/images. Large archives: build inside an allocation with APPTAINER_TMPDIR
# and APPTAINER_CACHEDIR on $SLURM_TMPDIR (login nodes cap memory); see images/README.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=images/common.sh
. "$here/common.sh"

tag="" out="$repo/dist/images" from_archive="" keep=0
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --engine) FLLM_ENGINE="$2"; shift 2 ;;
    --from-archive) from_archive="$2"; shift 2 ;;
    --keep-archive) keep=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) die "to-sif.sh: unknown option $1" ;;
    *) images+=("$1"); shift ;;
  esac
done
if [ ${#images[@]} -eq 0 ] || [ "${images[0]}" = all ]; then
  images=(collector sft-trainer grpo-trainer spin pi-distill evaluator analyzer)
fi

apptainer_bin=""
for b in apptainer singularity; do command -v "$b" >/dev/null && { apptainer_bin="$b"; break; }; done

if [ -n "$from_archive" ]; then
  out="$from_archive"
else
  engine="$(pick_engine)"
  if [ -z "$tag" ]; then
    tag="$(python3 -c 'import tomllib; print(tomllib.load(open("'"$repo"'/pyproject.toml","rb"))["project"]["version"])')"
  fi
  mkdir -p "$out"
  for name in "${images[@]}"; do
    ref="$FLLM_IMAGE_PREFIX/$name:$tag"
    image_exists "$engine" "$ref" || die "to-sif.sh: $ref is not built (make images)"
    if [ "$engine" = podman ]; then
      rm -f "$out/$name.oci.tar"
      podman save --format oci-archive -o "$out/$name.oci.tar" "$ref"
      echo "to-sif: $out/$name.oci.tar"
    else
      docker save -o "$out/$name.docker.tar" "$ref"
      echo "to-sif: $out/$name.docker.tar"
    fi
  done
fi

if [ -z "$apptainer_bin" ]; then
  echo "to-sif: Apptainer is not installed here; copy the archives in $out to the cluster and run"
  echo "        images/to-sif.sh --from-archive <dir>   (or: apptainer build <image>.sif oci-archive://<image>.oci.tar)"
  exit 0
fi
for name in "${images[@]}"; do
  if [ -f "$out/$name.oci.tar" ]; then src="oci-archive://$out/$name.oci.tar"; archive="$out/$name.oci.tar"
  elif [ -f "$out/$name.docker.tar" ]; then src="docker-archive://$out/$name.docker.tar"; archive="$out/$name.docker.tar"
  else die "to-sif.sh: no archive for $name in $out"; fi
  "$apptainer_bin" build --force "$out/$name.sif" "$src"
  (cd "$out" && sha256sum "$name.sif" > "$name.sif.sha256")
  [ "$keep" = 1 ] || rm -f "$archive"
  echo "to-sif: $out/$name.sif sha256:$(cut -c1-64 "$out/$name.sif.sha256")"
done
