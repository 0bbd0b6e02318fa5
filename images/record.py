"""Record what a build resolved in the images lock file (``images/images.lock`` unless told otherwise).

    python -m images.record --lock-file F --engine podman --image collector --ref REF --base-ref OS_IMAGE \
        --flavour cuda --deps lock --version V --commit C --inputs-digest D

Tags drift; digests do not. For each image this keeps the image's own id and digest, the OS image it started
from (the tag written in the definitions) with the registry digest that tag resolved to at build time, the
sha256 of the Python lock it installed, the project version and commit, and when and with what it was built.
Only what the engine reports is written: nothing here invents a digest (a locally made base has none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

SCHEMA = "forgetting-llms/images-lock/v1"


def inspect(engine: str, ref: str) -> dict:
    proc = subprocess.run([engine, "image", "inspect", ref], capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    return data[0] if isinstance(data, list) else data


def repo_digest(info: dict) -> str | None:
    for item in info.get("RepoDigests") or []:
        if "@" in item:
            return item.split("@", 1)[1]
    return None


def image_digest(info: dict) -> str | None:
    """podman reports the manifest digest of local images; docker only has RepoDigests after a push/pull."""
    return info.get("Digest") or repo_digest(info)


def engine_version(engine: str) -> str:
    proc = subprocess.run([engine, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def update(lock_file: Path, name: str, entry: dict) -> None:
    data = {"schema": SCHEMA, "images": {}}
    if lock_file.exists():
        data = json.loads(lock_file.read_text())
    data.setdefault("images", {})[name] = entry
    data["images"] = dict(sorted(data["images"].items()))
    tmp = lock_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(lock_file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for opt in ("lock-file", "engine", "image", "ref", "base-ref", "flavour", "deps", "version", "commit"):
        ap.add_argument(f"--{opt}", required=True)
    ap.add_argument("--inputs-digest", required=True)
    ap.add_argument("--python-lock", type=Path, required=True)
    args = ap.parse_args(argv)
    info = inspect(args.engine, args.ref)
    base = inspect(args.engine, args.base_ref)
    entry = {
        "ref": args.ref,
        "image_id": info.get("Id"),
        "image_digest": image_digest(info),
        "base_ref": args.base_ref,
        "base_digest": repo_digest(base),  # None for a base made locally (debootstrap): there is no registry digest
        "base_image_id": base.get("Id"),
        "flavour": args.flavour,
        "deps": args.deps,
        "python_lock_sha256": hashlib.sha256(args.python_lock.read_bytes()).hexdigest(),
        "inputs_digest": args.inputs_digest,
        "version": args.version,
        "git_commit": args.commit,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "builder": engine_version(args.engine),
    }
    update(Path(args.lock_file), args.image, entry)
    print(f"record: {args.image} -> {args.lock_file} ({entry['image_digest'] or entry['image_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
