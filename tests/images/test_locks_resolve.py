"""Every committed lock resolves against the package index for CPython 3.11 on manylinux x86_64.

This is what a workstation build of the GPU images will ask the index for, checked without downloading the
wheels (pip's dry run reads their metadata and filters files by the locked hashes). Marked ``index``: deselect
with ``-m "not index"`` offline; and ``slow`` (one to two minutes, mostly round trips to the index).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from images.resolve import all_locks, check

pytestmark = [
    pytest.mark.index,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.usefixtures("index_reachable"),
]


def test_every_lock_resolves_on_the_index():
    locks = all_locks()
    assert {p.parent.name for p in locks} >= {"analyzer", "collector", "grpo-trainer", "flash-attn"}
    outcome = check(locks)
    assert outcome.ok, "\n\n".join(outcome.problems)
    assert outcome.checked > 250


def test_a_pin_whose_hash_is_not_on_the_index_does_not_resolve(tmp_path: Path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    outcome = check([lock])
    assert not outcome.ok
    assert any("six==1.17.0" in p for p in outcome.problems), outcome.problems
