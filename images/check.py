"""Static checks of the image definitions and locks: what can be verified without building anything.

    python -m images.check        # prints every problem; exit 1 if there is one

The GPU images cannot be built on CI (no registry, no GPU), so their definitions are held to rules here:
every stage has an image whose entrypoint is its console script; base images are pinned by tag; the
environment the stages rely on is set (offline Hugging Face and W&B, provenance variables, default engines);
labels carry version and commit; and every lock pins exactly, with hashes, everything the image's extras need.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from images import lockfile
from images.dockerfile import Dockerfile, DockerfileError
from images.project import (
    HELPER_IMAGES,
    PYTHON_VERSION,
    REPO,
    ImageDef,
    expand_extras,
    no_deps_pins,
    read_pyproject,
    stage_images,
)

VENV_BIN = "/opt/venv/bin"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline"}
PROVENANCE_ENV = ("FLLM_IMAGE", "FLLM_IMAGE_DIGEST", "FLLM_GIT_COMMIT")
# Where an image's default engine differs from the stage's CPU default (its first engine).
DEFAULT_ENGINES = {"sft-trainer": "verl", "grpo-trainer": "verl", "collector": "vllm", "evaluator": "vllm"}
REQUIRED_LABELS = {
    "org.opencontainers.image.version": "${FLLM_VERSION}",
    "org.opencontainers.image.revision": "${FLLM_GIT_COMMIT}",
}
FORBIDDEN = {"USER": "Apptainer runs as the calling user", "VOLUME": "a SIF is read-only; bind paths at run time"}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def pinned(ref: str) -> bool:
    """A registry reference with an explicit tag other than latest (or a digest)."""
    if "@sha256:" in ref:
        return True
    last = ref.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest") and "$" not in ref


def _target_env(extras: set[str]) -> list[dict[str, str]]:
    base = {
        "python_version": PYTHON_VERSION, "python_full_version": f"{PYTHON_VERSION}.2", "os_name": "posix",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
        "platform_python_implementation": "CPython", "implementation_name": "cpython", "platform_release": "",
        "platform_version": "", "implementation_version": f"{PYTHON_VERSION}.2",
    }  # fmt: skip
    return [{**base, "extra": e} for e in (extras or {""})]


def check_definition(img: ImageDef, root: Path, scripts: dict[str, str]) -> list[str]:
    path = img.dockerfile(root)
    rel = path.relative_to(root)
    if not path.exists():
        return [f"stage {img.stage} has no image definition ({rel})"]
    try:
        df = Dockerfile.read(path)
        entry = df.entrypoint()
        froms = df.froms()
        env, labels, args = df.env(), df.labels(), df.arg_defaults()
    except DockerfileError as e:
        return [f"{rel}: {e}"]
    problems = []
    want = [f"{VENV_BIN}/{img.stage}"]
    if entry != want:
        problems.append(f"{rel}: ENTRYPOINT is {entry} but the stage's console script is {want}")
    script = scripts.get(img.stage or "")
    if script != f"stages.{img.package}.cli:main":
        problems.append(
            f"pyproject.toml: console script {img.stage!r} is {script!r}, not stages.{img.package}.cli:main"
        )
    for keyword, why in FORBIDDEN.items():
        if df.of(keyword):
            problems.append(f"{rel}: {keyword} is not allowed ({why})")
    flavour = "cuda" if img.gpu else "cpu"
    base_ref = froms[-1][0] if froms else ""
    if base_ref != f"localhost/forgetting-llms/base:{flavour}":
        problems.append(f"{rel}: the last FROM must be ${{BASE}} defaulting to the {flavour} base, not {base_ref!r}")
    problems += [f"{rel}: FROM {ref} is not pinned by tag" for ref, _ in froms if not pinned(ref)]
    extras = args.get("EXTRAS", "").split()
    if img.stage not in extras:
        problems.append(f"{rel}: ARG EXTRAS {extras} does not include the stage's extra {img.stage!r}")
    for name in PROVENANCE_ENV:
        if env.get(name) != f"${{{name}}}" or name not in args:
            problems.append(f"{rel}: ENV {name} must be set from ARG {name} (the stage records it in provenance)")
    engine = DEFAULT_ENGINES.get(img.stage or "")
    if engine is None and "FLLM_DEFAULT_ENGINE" in env:
        problems.append(f"{rel}: sets FLLM_DEFAULT_ENGINE, but the stage's image default is its CPU default")
    if engine is not None and (
        env.get("FLLM_DEFAULT_ENGINE") != "${DEFAULT_ENGINE}" or args.get("DEFAULT_ENGINE") != engine
    ):
        problems.append(f"{rel}: must set ENV FLLM_DEFAULT_ENGINE=${{DEFAULT_ENGINE}} with ARG DEFAULT_ENGINE={engine}")
    for key, value in REQUIRED_LABELS.items():
        if labels.get(key) != value:
            problems.append(f"{rel}: LABEL {key} must be {value}")
    if labels.get("io.forgetting-llms.stage") != img.stage:
        problems.append(f"{rel}: LABEL io.forgetting-llms.stage must be {img.stage}")
    return problems


def check_base(root: Path) -> list[str]:
    path = root / "images" / "base" / "Dockerfile"
    if not path.exists():
        return ["the shared base images/base/Dockerfile is missing"]
    df = Dockerfile.read(path)
    problems = []
    env = df.env()
    for key, value in OFFLINE_ENV.items():
        if env.get(key) != value:
            problems.append(f"images/base/Dockerfile: ENV {key}={value} is missing (stages must run offline)")
    os_image = df.arg_defaults().get("OS_IMAGE", "")
    if not pinned(os_image):
        problems.append(f"images/base/Dockerfile: OS_IMAGE {os_image!r} is not pinned by tag")
    common = (root / "images" / "common.sh").read_text(encoding="utf-8")
    if f"FLLM_CUDA_BASE:-{os_image}}}" not in common:
        problems.append(f"images/common.sh: FLLM_CUDA_BASE must default to the base's OS_IMAGE {os_image}")
    return problems


def check_lock(img: ImageDef, root: Path, pyproject: dict) -> list[str]:
    from packaging.requirements import Requirement

    path = img.lock(root)
    rel = path.relative_to(root)
    if not path.exists():
        return [f"{rel} is missing: python -m images.locks {img.name}"]
    lock = lockfile.read(path)
    problems = [f"{rel.parent}/{p}" for p in lock.problems]
    extras = Dockerfile.read(img.dockerfile(root)).arg_defaults().get("EXTRAS", "").split()
    try:
        reqs, reached = expand_extras(extras, pyproject)
    except ValueError as e:
        return problems + [f"{img.dockerfile(root).relative_to(root)}: {e}"]
    reqs_in = img.folder(root) / "requirements.in"
    if reqs_in.exists():
        reqs += [ln.strip() for ln in reqs_in.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for text in reqs + no_deps_pins(reached):
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate(e) for e in _target_env(set(extras))):
            continue
        version = lock.version(req.name)
        if version is None and req.name == "flash-attn" and f"# {text}: resolved here" in path.read_text():
            continue  # resolved with the trainer, built by images/flash-attn (checked in check_flash_attn)
        if version is None:
            problems.append(f"{rel}: {req} is not pinned (re-lock: python -m images.locks {img.name})")
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(f"{rel}: pins {req.name}=={version}, which does not satisfy {req}")
    if not img.gpu and any(lock.version(n) for n in ("torch", "vllm", "nvidia-cublas-cu12", "nvidia-cudnn-cu13")):
        problems.append(f"{rel}: a CPU-only image must not pin torch, vLLM or CUDA libraries")
    return problems


def check_flash_attn(root: Path, images: list[ImageDef]) -> list[str]:
    users = [
        i for i in images if i.dockerfile(root).exists() and "FROM ${FLASH_ATTN}" in i.dockerfile(root).read_text()
    ]
    if not users:
        return []
    folder = root / "images" / "flash-attn"
    if not (folder / "Dockerfile").exists():
        return ["images/flash-attn/Dockerfile is missing (the trainer images copy flash-attention from it)"]
    problems = []
    builder = lockfile.read(folder / "requirements.lock")
    source = lockfile.read(folder / "flash-attn.lock")
    problems += [f"images/flash-attn/{p}" for p in builder.problems + source.problems]
    if source.version("flash-attn") is None:
        problems.append("images/flash-attn/flash-attn.lock does not pin flash-attn")
    for img in users:
        torch = lockfile.read(img.lock(root)).version("torch") if img.lock(root).exists() else None
        if torch != builder.version("torch"):
            problems.append(
                f"images/flash-attn builds against torch {builder.version('torch')} but {img.name} pins torch {torch}"
            )
    return problems


def check_images_lock(root: Path) -> list[str]:
    path = root / "images" / "images.lock"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return [f"images/images.lock is not JSON: {e}"]
    problems = []
    for name, entry in data.get("images", {}).items():
        for key in ("image_digest", "base_digest"):
            value = entry.get(key)
            if value and not _DIGEST.match(value):
                problems.append(f"images/images.lock: {name}.{key} {value!r} is not a sha256 digest")
    return problems


def check_all(root: Path = REPO) -> list[str]:
    pyproject = read_pyproject(root)
    scripts = pyproject["project"].get("scripts", {})
    images = stage_images()
    problems = check_base(root)
    for img in images:
        found = check_definition(img, root, scripts)
        problems += found
        if img.dockerfile(root).exists():
            problems += check_lock(img, root, pyproject)
    problems += check_flash_attn(root, images)
    problems += check_images_lock(root)
    known = {i.name for i in images} | set(HELPER_IMAGES)
    for folder in sorted((root / "images").glob("*/Dockerfile")):
        if folder.parent.name not in known:
            problems.append(f"images/{folder.parent.name}/Dockerfile belongs to no stage in stages/registry.py")
    return problems


def main() -> int:
    problems = check_all()
    for p in problems:
        print(f"check: {p}")
    print(f"check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
