"""Storage and digests through fsspec: memory:// (as on object stores), variable expansion, atomic writes."""

from __future__ import annotations

import fsspec
import pytest

from stages.core import storage
from stages.core.digest import digest


def test_memory_atomic_write_and_read():
    uri = "memory://fllm-test/run/manifest.json"
    storage.write_text_atomic(uri, '{"a": 1}')
    assert storage.read_text(uri) == '{"a": 1}'
    fs = fsspec.filesystem("memory")
    assert [p for p in fs.find("/fllm-test/run") if p.endswith(".tmp")] == []
    storage.write_json_atomic(uri, {"b": 2})
    assert '"b": 2' in storage.read_text(uri)


def test_expand_variables_and_relative(monkeypatch, tmp_path):
    monkeypatch.setenv("SCRATCH", str(tmp_path))
    assert storage.expand("$SCRATCH/x") == f"{tmp_path}/x"
    assert storage.expand("${SCRATCH}/y") == f"{tmp_path}/y"
    monkeypatch.chdir(tmp_path)
    assert storage.expand("rel/z") == f"{tmp_path}/rel/z"
    with pytest.raises(storage.StorageError, match=r"\$UNSET_FOR_TEST"):
        storage.expand("$UNSET_FOR_TEST/x")


def test_dir_digest_tracks_content_names_and_ignores_locks(tmp_path):
    d = tmp_path / "art"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("hello")
    (d / "sub" / "b.txt").write_text("world")
    first = digest(str(d))
    assert first.startswith("sha256-dir:")
    (d / ".lock").write_text("pid")
    assert digest(str(d)) == first
    (d / "sub" / "b.txt").write_text("World")
    changed = digest(str(d))
    assert changed != first
    (d / "sub" / "b.txt").rename(d / "sub" / "c.txt")
    assert digest(str(d)) not in (first, changed)
    f = d / "a.txt"
    assert digest(str(f)) == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_memory_dir_digest_equals_local(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.bin").write_bytes(b"\x00\x01")
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/fllm-dig/x/f.bin", b"\x00\x01")
    assert digest("memory://fllm-dig/x") == digest(str(tmp_path / "x"))
