"""Run by test_sandbox_unprivileged as an unprivileged user: start a Sandbox and try a few attacks.

Prints one JSON object: the sandbox mode and, per attack, whether it got through.
Usage: python -m tests.envs.unprivileged_probe <sentinel folder>
"""

from __future__ import annotations

import json
import os
import sys
import time

from stages.envs import Sandbox, SandboxLimits


def main() -> None:
    sentinel = sys.argv[1]
    os.environ["HF_TOKEN"] = "hf-secret-probe"
    out: dict = {"uid": os.getuid()}
    with Sandbox(SandboxLimits(wall_s=2.0, cpu_s=2, memory_mb=512)) as sb:
        out["mode"] = sb.report.get("mode")
        out["echo"] = sb.run("print(input())", "hi\n").stdout.strip() == "hi"
        r = sb.run(f"open({sentinel + '/pwned'!r}, 'w').write('x')\nprint('wrote')")
        out["write_outside"] = os.path.exists(sentinel + "/pwned")
        r = sb.run(f"import os\nos.remove({sentinel + '/keep.txt'!r})")
        out["delete_outside"] = not os.path.exists(sentinel + "/keep.txt")
        r = sb.run("import socket\nsocket.create_connection(('8.8.8.8', 53), timeout=1)\nprint('connected')")
        out["network"] = r.stdout.strip() == "connected"
        r = sb.run("import os\nprint(os.environ.get('HF_TOKEN'))")
        out["env_secret"] = "secret" in r.stdout
        r = sb.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
        out["fork_bomb_timed_out"] = r.timed_out
        bg = sentinel + "/bg"
        sb.run(f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1)\n    open({bg!r}, 'w')")
        time.sleep(1.5)
        out["background_survived"] = os.path.exists(bg)
        out["after"] = sb.run("print(6 * 7)").stdout.strip() == "42"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
