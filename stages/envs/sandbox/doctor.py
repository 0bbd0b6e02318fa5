"""``python -m stages.envs.sandbox.doctor``: which isolation layers hold on this node, checked by real attacks.

Starts the sandbox as the stages do and reports its layers (namespaces, Landlock with its ABI, seccomp, the uid
programs run as), why an absent one is absent, and what stays open. Then it runs a few attacks through it (write
outside the working directory, connect to a loopback listener, read another process's environment, signal this
process) and says whether each was stopped, so a layer that is reported but does not hold shows up here too.
Exit code 0 when model-written code is contained, 1 when it is not, 2 when the sandbox cannot start at all.

Every stage that grades code runs this check in its preflight (``gate``), and the per-cluster smoke job can run it
alone; ``--json`` prints the whole record.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading

from stages.envs.sandbox.client import Sandbox, SandboxError
from stages.envs.sandbox.limits import SandboxLimits

LIMITS = SandboxLimits(wall_s=5.0, cpu_s=5, memory_mb=512)


def _attacks(folder: str, port: int) -> dict[str, str]:
    """Programs that print "breached" when their attack works."""
    return {
        "write outside": f"open({folder + '/x'!r}, 'w').write('x')\nprint('breached')",
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('breached')",
        "other processes' environment": f"open('/proc/{os.getpid()}/environ', 'rb').read()\nprint('breached')",
        "signal the grader": f"import os\nos.kill({os.getpid()}, 0)\nprint('breached')",
    }


def _run_attacks(sb: Sandbox) -> dict[str, bool]:
    """attack -> stopped?"""
    folder = tempfile.mkdtemp(prefix="fllm-doctor-")
    os.chmod(folder, 0o777)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    reached: list = []
    t = threading.Thread(target=lambda: reached.append(_accept(server)), daemon=True)
    t.start()
    try:
        out = {}
        for name, program in _attacks(folder, server.getsockname()[1]).items():
            r = sb.run(program)
            out[name] = "breached" not in r.stdout and not (name == "write outside" and os.listdir(folder))
        t.join()
        out["network"] = out["network"] and not any(reached)
        return out
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def _accept(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
        conn.close()
        return True
    except OSError:
        return False


def diagnose(isolation: str = "auto") -> dict:
    """The record: layers, why any is missing, what stays open, and the attacks' outcomes."""
    sb = Sandbox(LIMITS, isolation=isolation, allow_unisolated=True)
    try:
        report = sb.start()
        attacks = _run_attacks(sb)
    except SandboxError as exc:
        return {"isolation": "unavailable", "contained": False, "error": str(exc), "gaps": ["the sandbox"]}
    finally:
        sb.close()
    gaps = list(report["gaps"]) + [f"attack not stopped: {a}" for a, ok in attacks.items() if not ok]
    return {"isolation": report["isolation"], "contained": not gaps, "gaps": gaps, "attacks": attacks,
            "layers": {"namespaces": report.get("mode") == "namespaces", **report.get("layers", {})},
            "why": {**report.get("why", {}), **({"namespaces": report["reason"]} if "reason" in report else {})},
            "uid": report.get("uid"), "programs_uid": 65534 if report.get("drop_root") else report.get("uid"),
            "kernel": os.uname().release}


def lines(record: dict) -> list[str]:
    """The record for a person (and for a stage's log)."""
    if "error" in record:
        return [f"sandbox doctor: the sandbox cannot start: {record['error']}"]
    layers, why = record["layers"], record["why"]
    out = [f"sandbox doctor: isolation {record['isolation']} on kernel {record['kernel']}, programs run as uid "
           f"{record['programs_uid']}: {'contained' if record['contained'] else 'NOT CONTAINED'}"]
    for layer in ("namespaces", "landlock", "seccomp"):
        on = layers.get(layer)
        detail = f"ABI {on}" if layer == "landlock" and on else ("active" if on else f"absent ({why.get(layer, '')})")
        out.append(f"  {layer:<11} {detail}")
    out.append("  rlimits     active (time, memory, processes, file size, open files); clean environment; "
               "own session and process group")
    out += [f"  attack {a!r}: {'stopped' if ok else 'NOT STOPPED'}" for a, ok in record["attacks"].items()]
    out += [f"  open: {g}" for g in record["gaps"]]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.envs.sandbox.doctor", description=__doc__.split("\n")[0])
    ap.add_argument("--isolation", choices=("auto", "namespaces", "none"), default="auto",
                    help="as the stages start it (auto), or forcing one mode")
    ap.add_argument("--json", action="store_true", help="print the record as JSON")
    args = ap.parse_args(argv)
    record = diagnose(args.isolation)
    print(json.dumps(record, indent=1) if args.json else "\n".join(lines(record)))
    return 2 if "error" in record else (0 if record["contained"] else 1)


if __name__ == "__main__":
    sys.exit(main())
