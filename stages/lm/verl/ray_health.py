"""Is the Ray cluster a launcher just started usable? Checked before the entry point starts, and by the per-cluster
smoke job (slurm/smoke/).

Why more than counting nodes: almost every multi-node Ray failure is silent (reference/scale.md §4.2). A raylet that
registered can still fail to start workers (temp dir, PYTHONPATH, the image), and a variable set on the head may
never reach the workers of another node. So this waits for the GCS port, then for every node with its GPUs, then
runs one task pinned to each node that reports what that node's workers see: the variables the launcher passed,
the size of ``/dev/shm`` (Ray's object store), whether ``libibverbs`` and ``/dev/infiniband`` are there (GPU
nodes without them get a warning: NCCL will use TCP sockets between them), and with ``--cuda`` the GPUs torch finds. A ``ray start`` process
named by ``--watch-pid`` that exits meanwhile fails the check at once instead of after the timeout.

``python -m stages.lm.verl.ray_health --nodes 2 [--gpus-per-node 4] [--address host:port]`` prints one line per
node and ``RAY_HEALTH {json}``; exit 0 when healthy, 1 when not (the message says what is missing), 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path


class Unhealthy(RuntimeError):
    """The cluster is not usable; the message says why."""


def parse_watch(items: list[str]) -> dict[int, str]:
    out = {}
    for item in items:
        pid, _, label = item.partition("=")
        if not pid.isdigit():
            raise argparse.ArgumentTypeError(f"--watch-pid {item!r} is not PID[=LABEL]")
        out[int(pid)] = label or f"pid {pid}"
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def check_watched(watch: dict[int, str]) -> None:
    dead = [label for pid, label in watch.items() if not _alive(pid)]
    if dead:
        raise Unhealthy("Ray did not start or stopped: " + "; ".join(f"`ray start` of {d} exited" for d in dead))


def wait_for_port(address: str, deadline: float, watch: dict[int, str]) -> None:
    host, _, port = address.rpartition(":")
    while True:
        check_watched(watch)
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise Unhealthy(f"nothing listens on the Ray head's GCS port {address}") from None
            time.sleep(0.5)


def wait_for_nodes(ray, nodes: int, gpus_per_node: int, deadline: float, watch: dict[int, str]) -> list[dict]:
    while True:
        check_watched(watch)
        alive = [n for n in ray.nodes() if n["Alive"]]
        short = [n for n in alive if n["Resources"].get("GPU", 0) < gpus_per_node]
        if len(alive) >= nodes and not short:
            return alive
        if time.monotonic() > deadline:
            raise Unhealthy(
                f"{len(alive)} of {nodes} Ray node(s) joined"
                + (f"; {len(short)} with fewer than {gpus_per_node} GPU(s)" if short else "")
            )
        time.sleep(1.0)


def node_facts(expect_env: list[str], cuda: bool) -> dict:
    """Runs as a Ray task on one node: what that node's workers see."""
    import ctypes
    import shutil

    import ray

    try:
        ctypes.CDLL("libibverbs.so.1")
        verbs = True
    except OSError:
        verbs = False

    facts: dict = {
        "host": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "missing_env": [n for n in expect_env if n not in os.environ],
        "shm_free_gb": round(shutil.disk_usage("/dev/shm").free / 1e9, 2) if Path("/dev/shm").is_dir() else None,
        "libibverbs": verbs,
        "dev_infiniband": Path("/dev/infiniband").is_dir(),
    }
    if cuda:
        import torch

        facts["cuda_devices"] = torch.cuda.device_count()
    return facts


def probe_nodes(ray, alive: list[dict], expect_env: list[str], gpus_per_node: int, cuda: bool,
                timeout: float) -> list[dict]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(node_facts)
    refs = {}
    for node in alive:
        opts = {"num_cpus": 0, "num_gpus": gpus_per_node if cuda else 0,
                "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)}
        refs[node["NodeID"]] = task.options(**opts).remote(expect_env, cuda)
    ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=max(timeout, 1.0))
    if pending:
        late = [n["NodeManagerAddress"] + f" (node {nid[:8]})" for nid, ref in refs.items() if ref in pending
                for n in alive if n["NodeID"] == nid]
        raise Unhealthy(f"no task ran within {timeout:.0f}s on: {', '.join(late)} (workers fail to start there?)")
    out = []
    for node in alive:
        facts = ray.get(refs[node["NodeID"]])
        facts.update(ip=node["NodeManagerAddress"], cpus=node["Resources"].get("CPU", 0),
                     gpus=node["Resources"].get("GPU", 0), node_manager_port=node["NodeManagerPort"],
                     object_manager_port=node["ObjectManagerPort"], raylet_socket=node["RayletSocketName"])
        out.append(facts)
    return out


def problems_of(facts: list[dict], gpus_per_node: int, cuda: bool) -> list[str]:
    out = []
    for f in facts:
        if f["missing_env"]:
            out.append(f"{f['host']}: Ray workers lack {', '.join(f['missing_env'])} (passed by the launcher)")
        if cuda and f.get("cuda_devices", 0) < gpus_per_node:
            out.append(f"{f['host']}: torch sees {f.get('cuda_devices')} GPU(s) in a task given {gpus_per_node}")
        if len(f["raylet_socket"]) > 107:
            out.append(f"{f['host']}: raylet socket path is {len(f['raylet_socket'])} bytes (> 107)")
    return out


def warnings_of(facts: list[dict], gpus_per_node: int) -> list[str]:
    """NCCL falls back to TCP sockets between GPU nodes without libibverbs or /dev/infiniband: not an error (some
    clusters have no InfiniBand), but said up front; the smoke job's all-reduce shows which network NCCL took."""
    if len(facts) < 2 or gpus_per_node == 0:
        return []
    return [f"{f['host']}: no {'libibverbs.so.1' if not f['libibverbs'] else '/dev/infiniband'}: NCCL will use TCP "
            "sockets between nodes" for f in facts if not (f["libibverbs"] and f["dev_infiniband"])]


def check(address: str, nodes: int, gpus_per_node: int, timeout: float, expect_env: list[str],
          watch: dict[int, str], cuda: bool) -> dict:
    deadline = time.monotonic() + timeout
    wait_for_port(address, deadline, watch)
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        alive = wait_for_nodes(ray, nodes, gpus_per_node, deadline, watch)
        facts = probe_nodes(ray, alive, expect_env, gpus_per_node, cuda, deadline - time.monotonic())
    finally:
        ray.shutdown()
    problems = problems_of(facts, gpus_per_node, cuda)
    if problems:
        raise Unhealthy("; ".join(problems))
    return {"address": address, "nodes": facts, "warnings": warnings_of(facts, gpus_per_node)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.lm.verl.ray_health", description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="head host:port (default $RAY_ADDRESS)")
    ap.add_argument("--nodes", type=int, required=True, help="nodes that must be alive")
    ap.add_argument("--gpus-per-node", type=int, default=0, help="GPUs each node must offer to Ray")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole check")
    ap.add_argument("--expect-env", default="", help="comma-separated variables every node's workers must see")
    ap.add_argument("--watch-pid", action="append", default=[], help="PID[=LABEL] of a `ray start` that must live")
    ap.add_argument("--cuda", action="store_true", help="also count the GPUs torch sees in a task on each node")
    ap.add_argument("--json-out", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    if not args.address or ":" not in args.address:
        ap.error("--address host:port is required (or set RAY_ADDRESS)")
    if args.nodes < 1 or args.gpus_per_node < 0:
        ap.error("--nodes must be >= 1 and --gpus-per-node >= 0")
    try:
        watch = parse_watch(args.watch_pid)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    expect = [n for n in args.expect_env.split(",") if n]
    started = time.monotonic()
    try:
        result = check(args.address, args.nodes, args.gpus_per_node, args.timeout, expect, watch, args.cuda)
        result["ok"] = True
    except Unhealthy as e:
        result = {"address": args.address, "ok": False, "error": str(e)}
        print(f"ray_health: UNHEALTHY: {e}", file=sys.stderr)
    result["seconds"] = round(time.monotonic() - started, 1)
    for f in result.get("nodes", []):
        gpu = f" cuda={f['cuda_devices']}" if "cuda_devices" in f else ""
        print(f"ray_health: {f['host']} ({f['ip']}:{f['node_manager_port']}) cpus={f['cpus']:g} gpus={f['gpus']:g}"
              f"{gpu} shm_free={f['shm_free_gb']}GB env ok")
    for warning in result.get("warnings", []):
        print(f"ray_health: WARNING {warning}")
    print("RAY_HEALTH " + json.dumps(result), flush=True)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
