"""The six GEM environments the study uses, as plain data.

Mirrors GEM's own registrations (`gem/envs/__init__.py`; a test checks they still agree) and adds what
GEM leaves implicit: the domain, the split to use when GEM registers none (`math:GSM8K`), the folder
name a dataset snapshot or fixture uses, and where a reference solution may live. Other stages import
this to route rewards (`data_source` = env id) and to name dataset folders; it imports nothing heavy.

Folder layout read by the adapter (and written by `stages.envs.snapshot` and the test fixtures):
`<datasets root>/<folder>/<split>.parquet`, columns in GEM's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.envs.errors import UnknownEnvError

DOMAINS = ("math", "code", "qa")
SOLUTION_KEYS = ("solution", "reference_solution")  # first present column is the reference solution


@dataclass(frozen=True)
class EnvSpec:
    env_id: str
    domain: str
    role: str  # "train" or "eval"
    gem_entry_point: str
    hf_dataset: str
    gem_split: str | None  # the split GEM registers (None: GEM passes none)
    split: str  # the split this project reads by default
    question_key: str
    answer_key: str  # "tests" for code
    folder: str

    def dataset_dir(self, datasets_root: str | Path) -> Path:
        return Path(datasets_root) / self.folder


_MATH, _CODE, _QA = "gem.envs.math_env:MathEnv", "gem.envs.code_env:CodeEnv", "gem.envs.qa_env:QaEnv"

ENVS: dict[str, EnvSpec] = {
    s.env_id: s
    for s in (
        EnvSpec("math:GSM8K", "math", "train", _MATH, "axon-rl/GSM-8k", None, "train", "problem", "answer", "gsm-8k"),
        EnvSpec("eval:MATH500", "math", "eval", _MATH, "axon-rl/math-eval", "math", "math", "problem", "answer",
                "math-eval"),
        EnvSpec("code:CodeContest", "code", "train", _CODE, "axon-rl/CodeContest", "train", "train", "problem",
                "tests", "codecontest"),
        EnvSpec("eval:CodeContest", "code", "eval", _CODE, "axon-rl/CodeContest", "test", "test", "problem",
                "tests", "codecontest"),
        EnvSpec("qa:NaturalQuestions", "qa", "train", _QA, "axon-rl/NaturalQuestions", "train", "train", "problem",
                "answer", "naturalquestions"),
        EnvSpec("eval:NaturalQuestions", "qa", "eval", _QA, "axon-rl/search-eval", "nq", "nq", "question", "answer",
                "search-eval"),
    )
}


def env_spec(env_id: str) -> EnvSpec:
    try:
        return ENVS[env_id]
    except (KeyError, TypeError):
        raise UnknownEnvError(f"unknown env id {env_id!r}; known env ids: {', '.join(ENVS)}") from None


def domain_of(domain_or_env_id: str) -> str:
    """'math' / 'code' / 'qa' from either a domain name or one of the env ids."""
    if domain_or_env_id in DOMAINS:
        return domain_or_env_id
    if domain_or_env_id in ENVS:
        return ENVS[domain_or_env_id].domain
    raise UnknownEnvError(
        f"unknown domain or env id {domain_or_env_id!r}; expected one of {', '.join(DOMAINS)} "
        f"or an env id: {', '.join(ENVS)}"
    )
