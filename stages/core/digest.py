"""Content digests of artifacts, DVC-style: a file is its sha256, a folder the sha256 of its sorted listing.

The folder listing holds (relative path, size, file sha256) for every file, so renaming, adding, removing or
changing any file changes the digest, and two folders with the same content share a digest wherever they live.
Hidden lock and temp files of our own (``.lock``, ``.*.tmp``) are left out.
"""

from __future__ import annotations

import hashlib

from stages.core.storage import StorageError, url_to_fs

_CHUNK = 4 * 1024 * 1024


def _skip(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name == ".lock" or (name.startswith(".") and name.endswith(".tmp"))


def _file_sha256(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digest(uri: str) -> str:
    """``sha256:<hex>`` for a file, ``sha256-dir:<hex>`` for a folder."""
    fs, path = url_to_fs(uri)
    if not fs.exists(path):
        raise StorageError(f"cannot digest {uri!r}: it does not exist")
    if not fs.isdir(path):
        return "sha256:" + _file_sha256(fs, path)
    root = path.rstrip("/")
    rows = []
    for p in sorted(fs.find(root, detail=False)):
        rel = p[len(root) :].lstrip("/")
        if _skip(rel):
            continue
        rows.append(f"{rel}\t{fs.size(p)}\t{_file_sha256(fs, p)}")
    return "sha256-dir:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()
