"""Storage through fsspec: local paths, ``file://``, ``memory://`` (tests) and whatever fsspec can reach.

Environment variables (``$SCRATCH``, ``${SLURM_TMPDIR}``) and ``~`` are expanded at run time, so one manifest works
on every cluster. Writes that others may read while we run go through ``write_text_atomic`` (temp file + rename), so
a reader never sees half a manifest.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

_UNSET_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


class StorageError(ValueError):
    """A URI cannot be expanded, read or written."""


def expand_vars(text: str) -> str:
    """Expand ``$VARS`` and ``~`` and nothing else (a path parameter may also hold a served model's name). Unset
    variables are an error."""
    out = os.path.expanduser(os.path.expandvars(text))
    missing = _UNSET_VAR.findall(out)
    if missing:
        raise StorageError(f"environment variable ${missing[0]} in {text!r} is not set")
    return out


def expand(uri: str) -> str:
    """Expand ``$VARS`` and ``~``; relative local paths become absolute. Unset variables are an error."""
    out = expand_vars(uri)
    if "://" not in out:
        out = os.path.abspath(out)
    return out


def url_to_fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(expand(uri))
    return fs, path


def is_local(uri: str) -> bool:
    fs, _ = url_to_fs(uri)
    return isinstance(fs, LocalFileSystem)


def local_path(uri: str) -> Path:
    """The local path of a URI, or an error saying the stage needs local storage for it."""
    fs, path = url_to_fs(uri)
    if not isinstance(fs, LocalFileSystem):
        raise StorageError(f"{uri!r} is not on a local or mounted file system; this step needs one")
    return Path(path)


def join(base: str, *parts: str) -> str:
    base = expand(base)
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def exists(uri: str) -> bool:
    fs, path = url_to_fs(uri)
    return fs.exists(path)


def is_dir(uri: str) -> bool:
    fs, path = url_to_fs(uri)
    return fs.isdir(path)


def read_text(uri: str) -> str:
    fs, path = url_to_fs(uri)
    try:
        with fs.open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError as e:
        raise StorageError(f"cannot read {uri!r}: no such file") from e
    except IsADirectoryError as e:
        raise StorageError(f"cannot read {uri!r}: it is a directory") from e
    except PermissionError as e:
        raise StorageError(f"cannot read {uri!r}: permission denied") from e
    except UnicodeDecodeError as e:
        raise StorageError(f"cannot read {uri!r}: not UTF-8 text") from e


def write_text_atomic(uri: str, text: str) -> None:
    """Write a whole file so that readers see either the old or the new content, never a mix."""
    fs, path = url_to_fs(uri)
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.{path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:8]}.tmp"
    if isinstance(fs, LocalFileSystem):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(tmp, text.encode("utf-8"))
        fs.mv(tmp, path)


def write_json_atomic(uri: str, obj: Any) -> None:
    write_text_atomic(uri, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def makedirs(uri: str) -> None:
    fs, path = url_to_fs(uri)
    fs.makedirs(path, exist_ok=True)


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = url_to_fs(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def listdir(uri: str) -> list[str]:
    fs, path = url_to_fs(uri)
    if not fs.exists(path):
        return []
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
