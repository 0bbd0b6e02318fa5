"""Environments and rewards for the study: GEM envs on local data, graders for math / code / QA, a sandbox.

Public API (everything other stages need; all of it importable without torch, gem or verl):

    ENVS, EnvSpec, env_spec(env_id), domain_of(x)     the six env ids as plain data (registry.py)
    open_env(env_id, dataset_dir, split=None, *, template="qwen3-v1", thinking=False) -> EnvDataset
        EnvDataset.items(seed=0, start=0, stop=None) -> Iterator[EnvItem]   (seeded order; shard_range()
        gives [start, stop) for job i of n); len(ds); ds.item(index); ds.gem_env() -> the real GEM env
        EnvItem(index, env_id, domain, question, messages, ground_truth, reference_solution, metadata)
    dataset_dir_for(datasets_root, env_id) -> Path       <root>/<folder>, the snapshot/fixture layout
    build_messages(domain, question, *, template, thinking) -> chat messages; chat_template_kwargs(thinking)
    grade(domain_or_env_id, response, ground_truth) -> Verdict(score, correct, verdict, details)
    grade_many(domain_or_env_id | ids, responses, ground_truths) -> list[Verdict]   (code runs in parallel)
    Graders(GradeOptions(...))                           the same with non-default limits / timeouts
    Sandbox, SandboxLimits                               run untrusted Python directly
    normalize_ground_truth(domain, value)                the JSON-safe ground truth per domain

verl's reward hook: `stages/envs/verl_reward.py` (compute_score). Dataset snapshots:
`python -m stages.envs.snapshot --help`. Bad input raises subclasses of ValueError (errors.py).
"""

from stages.envs.dataset import EnvDataset, EnvItem, dataset_dir_for, open_env, shard_range
from stages.envs.errors import DatasetLayoutError, EnvError, GroundTruthError, TemplateError, UnknownEnvError
from stages.envs.grade import GradeOptions, Graders, grade, grade_many
from stages.envs.ground_truth import normalize_ground_truth
from stages.envs.registry import DOMAINS, ENVS, EnvSpec, domain_of, env_spec
from stages.envs.sandbox import Sandbox, SandboxLimits
from stages.envs.templates import DEFAULT_TEMPLATE, TEMPLATES, build_messages, chat_template_kwargs
from stages.envs.verdict import Verdict

__all__ = [
    "DEFAULT_TEMPLATE", "DOMAINS", "ENVS", "TEMPLATES", "DatasetLayoutError", "EnvDataset", "EnvError",
    "EnvItem", "EnvSpec", "GradeOptions", "Graders", "GroundTruthError", "Sandbox", "SandboxLimits",
    "TemplateError", "UnknownEnvError", "Verdict", "build_messages", "chat_template_kwargs",
    "dataset_dir_for", "domain_of", "env_spec", "grade", "grade_many", "normalize_ground_truth", "open_env",
    "shard_range",
]
