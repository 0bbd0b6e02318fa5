"""Stands in for ``verl.trainer.main_ppo`` in the launcher tests: attach to the Ray cluster the way main_ppo does
(``ray.init()`` with no address, through ``RAY_ADDRESS``), run one trivial task pinned to each node, and report what
it found (nodes, where each task ran, what its worker saw of ``PROBE_ENV``, the arguments). With ``PROBE_WAIT=1`` it
then waits for a stop signal and exits 75, as a stage that checkpoints on SIGUSR2 would."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=0)
def where(name: str) -> dict:
    return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "env": os.environ.get(name)}


if __name__ == "__main__":
    ray.init(logging_level="ERROR", log_to_driver=False)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    name = os.environ.get("PROBE_ENV", "WANDB_RUN_ID")
    refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(name)
            for n in nodes]
    tasks = ray.get(refs, timeout=120)
    if os.environ.get("PROBE_WAIT") == "1":  # before the report: the test signals as soon as it reads it
        signal.signal(signal.SIGUSR2, lambda *_: sys.exit(75))
    print("PROBE " + json.dumps({
        "nodes": len(nodes),
        "address": os.environ.get("RAY_ADDRESS"),
        "gpus": sum(n["Resources"].get("GPU", 0) for n in nodes),
        "node_ids": [n["NodeID"] for n in nodes],
        "ports": {n["NodeID"]: [n["NodeManagerPort"], n["ObjectManagerPort"]] for n in nodes},
        "sockets": {n["NodeID"]: n["RayletSocketName"] for n in nodes},
        "tasks": tasks,
        "args": sys.argv[1:],
    }), flush=True)
    ray.shutdown()
    if os.environ.get("PROBE_WAIT") == "1":
        time.sleep(120)
        sys.exit(1)
