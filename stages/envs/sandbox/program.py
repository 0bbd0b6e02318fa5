"""Run untrusted program text the way `python -c <code>` would, inside an already-started interpreter.

The zygote forks a warm interpreter for each run instead of starting a new `python` (≈15 ms saved per
test, most of the cost of a short test). The forked child then has to look like a fresh `python -c`:
`__main__` is a new module, `sys.argv == ['-c']`, `sys.path[0] == ''`, standard streams are new
UTF-8 text wrappers over fds 0/1/2, uncaught exceptions print a traceback and exit 1, `SystemExit` codes
are honoured, non-daemon threads are joined and atexit handlers run before the streams are flushed.
Standard library only: imported by the zygote as a top-level module.
"""

from __future__ import annotations

import builtins
import os
import sys
import types


def _fresh_streams() -> None:
    # the standard streams live as long as the process: no context manager
    sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", newline="\n", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", newline="\n", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", newline="\n", closefd=False, buffering=1
    )


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _finish(rc: int) -> None:
    if "threading" in sys.modules:
        try:
            sys.modules["threading"]._shutdown()  # type: ignore[attr-defined]
        except BaseException:  # noqa: BLE001, S110 - as the interpreter: a broken thread changes nothing
            pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001, S110 - atexit already printed the error, as the interpreter does
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            rc = rc or 120
    os._exit(rc)


def run_as_main(code: str, clean_path: list[str], foreign_modules: list[str]) -> None:
    """Execute `code` as the `__main__` of this process, then exit the process. Never returns."""
    for name in foreign_modules:
        sys.modules.pop(name, None)
    if "random" in sys.modules:
        sys.modules["random"].seed()  # a forked interpreter would otherwise share the zygote's sequence
    sys.dont_write_bytecode = True
    sys.argv = ["-c"]
    sys.path[:] = ["", *clean_path]
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    _fresh_streams()
    rc = 0
    try:
        exec(compile(code, "<string>", "exec"), main.__dict__)  # noqa: S102 - this is the sandboxed program
    except SystemExit as exc:
        rc = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - print like the interpreter does, without this frame
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        rc = 1
    _finish(rc)
