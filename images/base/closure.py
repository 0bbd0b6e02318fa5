"""The installed dependency closure of ``forgetting-llms[<extras>]``, read from package metadata alone.

Two uses, one walk:

- ``freeze`` (on the host, by ``images/build.sh --deps venv``): print ``name==version`` for every distribution the
  extras need, as installed in the running environment, so a CPU image can be built with exactly the host's
  versions (byte-identical outputs between a host run and a container run);
- ``check`` (inside every image, at build time): fail unless every requirement of the extras is installed at a
  version that satisfies it, so a lock that drifted from ``pyproject.toml`` cannot make a broken image.

``gem-llm`` is installed without its dependencies (its antlr4 pin conflicts with verl's Hydra; the ``envs`` extra
lists what it needs), and so is ``nanogcg`` (its metadata caps transformers at 4.47.1; the ``evaluator`` extra
lists its one import-time dependency), so they are part of the closure but their own requirements are not walked.
Standalone on purpose (standard library plus ``packaging``, or pip's vendored copy) so the base image can run it as is.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare venv: pip's vendored copy
    from pip._vendor.packaging.markers import default_environment  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

PROJECT = "forgetting-llms"
NO_DEPS_BY_EXTRA = {"envs": ("gem-llm",), "evaluator": ("nanogcg",)}


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    env = default_environment()
    return any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))


def walk(extras: list[str]) -> tuple[dict[str, str], list[str]]:
    """(canonical name -> installed version, problems) for PROJECT[extras]."""
    found: dict[str, str] = {}
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    project_extras: set[str] = set()

    def visit(name: str, extras: set[str], why: str) -> None:
        key = canonicalize_name(name)
        todo = {e for e in (extras | {""}) if (key, e) not in seen}
        if not todo:
            return
        seen.update((key, e) for e in todo)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} (needed by {why}) is not installed")
            return
        found[key] = dist.version
        if key == canonicalize_name(PROJECT):
            project_extras.update(e for e in todo if e)
        for text in dist.requires or []:
            req = Requirement(text)
            if not _applies(req, {e for e in todo if e}):
                continue
            sub = canonicalize_name(req.name)
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{req.name} (needed by {dist.metadata['Name']}) is not installed")
                continue
            if req.specifier and not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name} {version} does not satisfy {dist.metadata['Name']}'s {req}")
            if sub not in found or req.extras:
                visit(req.name, set(req.extras), dist.metadata["Name"])

    visit(PROJECT, set(extras), "the image")
    for extra in sorted(project_extras):
        for name in NO_DEPS_BY_EXTRA.get(extra, ()):
            try:
                found[canonicalize_name(name)] = metadata.version(name)
            except metadata.PackageNotFoundError:
                problems.append(f"{name} (installed without dependencies for the {extra} extra) is not installed")
    return found, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["freeze", "check"])
    ap.add_argument("extras", nargs="*", help="extras of forgetting-llms, e.g. collector tracking")
    ap.add_argument("--exclude-project", action="store_true", help="freeze: leave forgetting-llms itself out")
    args = ap.parse_args(argv)
    found, problems = walk(args.extras)
    if problems:
        for p in problems:
            print(f"closure: {p}", file=sys.stderr)
        return 1
    if args.command == "freeze":
        for name in sorted(found):
            if args.exclude_project and name == canonicalize_name(PROJECT):
                continue
            print(f"{name}=={found[name]}")
    else:
        print(f"closure: forgetting-llms[{','.join(args.extras)}]: {len(found)} distributions, all satisfied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
