"""The sft-trainer's torchrun launcher: the shared one of ``stages.lm.launch`` (moved there so that spin starts its
torchrun workers the same way; a stage never imports another).

See ``stages.lm.launch.torchrun`` for the command (one node standalone, several nodes through srun with a c10d
rendezvous, SIGUSR2 among the signals torchrun forwards) and ``stages.lm.launch.process_group`` for the process
group the stage waits for. The native workers are asked to stop through a file (``stages.lm.launch.stop_request``);
verl's workers have no handler, so their group gets the signal and stops at once, and the next attempt resumes from
the last checkpoint verl saved.
"""

from stages.lm.launch.process_group import GROUP_EXIT_WAIT_S, STOP_GRACE_S, log_tail, run_group
from stages.lm.launch.torchrun import HANDLED_SIGNALS, RDZV_PORT, WORKER_SHUTDOWN_S, child_environment, torchrun_command

__all__ = ["GROUP_EXIT_WAIT_S", "HANDLED_SIGNALS", "RDZV_PORT", "STOP_GRACE_S", "WORKER_SHUTDOWN_S",
           "child_environment", "log_tail", "run_group", "torchrun_command"]
