"""torchrun's command and the stop file: what the images' torch 2.11 accepts, and a stop that no torchrun timeout
cuts short.

torch 2.11's torchrun refuses ``--shutdown-timeout`` (``unrecognized arguments``, seen on the GPU machine with the
images' torch), so the flag is passed only where the installed torchrun has it; the workers learn of a stop
through ``<job file>.stop``, written by the stage, checked by ``WorkerStop``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from stages.lm.launch.process_group import run_group
from stages.lm.launch.stop_request import WorkerStop, stop_file_for
from stages.lm.launch.torchrun import World, torchrun_command, torchrun_options


def test_the_shutdown_timeout_is_passed_only_to_a_torchrun_that_has_it():
    world = World(nodes=1, ranks_per_node=2, cpu=True)
    old = frozenset(torchrun_options() - {"--shutdown-timeout", "--shutdown_timeout"})  # torch 2.11's parser
    assert not any(a.startswith("--shutdown-timeout") for a in torchrun_command(world, "m", [], options=old))
    cmd = torchrun_command(world, "m", ["job.json"])
    assert "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR2" in cmd
    has_it = "--shutdown-timeout" in torchrun_options()
    assert any(a.startswith("--shutdown-timeout=") for a in cmd) == has_it
    # whatever it builds, the installed torchrun parses it
    from torch.distributed.run import get_args_parser

    parsed = get_args_parser().parse_args(cmd[3:])
    assert parsed.nproc_per_node == "2" and parsed.module and parsed.training_script == "m"


def test_a_worker_sees_the_stop_file_and_its_own_signal(tmp_path):
    job = tmp_path / "job.json"
    stop = WorkerStop(stop_file_for(job))
    assert stop() is False
    stop_file_for(job).write_text("x")
    assert stop() is True and stop(7) is True  # also as should_stop(step)
    signalled = WorkerStop(None).install()
    try:
        signal.raise_signal(signal.SIGUSR2)
        assert signalled() is True
    finally:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)


WORKER = """
import sys, time
from pathlib import Path
from stages.lm.launch.stop_request import WorkerStop
stop = WorkerStop(Path(sys.argv[1])).install()
Path(sys.argv[2]).write_text("started")
while not stop():
    time.sleep(0.05)
time.sleep(1.0)  # the "checkpoint"
Path(sys.argv[2]).write_text("stopped cleanly")
"""


class Ctx:
    def __init__(self) -> None:
        self.stop_requested = False
        self.groups: list[int] = []

    def add_child_process_group(self, pgid: int) -> None:
        self.groups.append(pgid)


def test_the_stage_asks_through_the_file_and_does_not_signal_the_group(tmp_path):
    ctx = Ctx()
    stop_file, marker = tmp_path / "job.json.stop", tmp_path / "marker"
    stop_file.write_text("left by an earlier attempt")
    polls = SimpleNamespace(n=0)

    def on_poll() -> None:
        polls.n += 1
        if marker.exists() and marker.read_text() == "started":
            ctx.stop_requested = True

    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-c", WORKER, str(stop_file), str(marker)]
    t0 = time.monotonic()
    code = run_group(ctx, cmd, {"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}, tmp_path / "log", cwd=tmp_path,
                     on_poll=on_poll, poll_s=0.2, stop_file=stop_file)
    assert code == 0, (tmp_path / "log").read_text()
    assert marker.read_text() == "stopped cleanly" and stop_file.exists()
    assert ctx.groups == [], "with a stop file the group is not registered for signal forwarding"
    assert time.monotonic() - t0 < 60
    assert subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, check=False).stdout == b""
