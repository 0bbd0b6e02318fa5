"""Stands in for ``verl.trainer.main_ppo`` in the launcher test: attach to the Ray cluster the way main_ppo does
(``ray.init()`` with no address, through ``RAY_ADDRESS``) and report what it found, including the arguments."""

from __future__ import annotations

import json
import os
import sys

import ray

if __name__ == "__main__":
    ray.init(logging_level="ERROR")
    nodes = [n for n in ray.nodes() if n["Alive"]]
    print("PROBE " + json.dumps({
        "nodes": len(nodes),
        "address": os.environ.get("RAY_ADDRESS"),
        "gpus": sum(n["Resources"].get("GPU", 0) for n in nodes),
        "args": sys.argv[1:],
    }))
    ray.shutdown()
