"""Fixtures of the conductor's tests on a real single-node Slurm. The cluster itself is the session fixture
``slurm_cluster`` of tests/conftest.py (started by slurm/local/start.sh when no cluster answers, stopped at the end
only if this session started it), shared with the other tests that need a configured Slurm.
"""

from __future__ import annotations

from tests.study.conftest import counter_env  # noqa: F401  (fixture re-exported for these tests)
