"""The small bash script that starts a verl entry point (``main_ppo`` for GRPO) on one machine or across the nodes
of one Slurm allocation, with Ray started by hand on every node.

Why a script: Ray across nodes is started with ``srun``/``ray start`` per node, which is shell work; writing it into
the run folder (``verl/launch.sh``) records exactly what ran and lets a person rerun it by hand. The entry point's
arguments (Hydra overrides) are passed as arguments, never spliced into the text, so no path can break the quoting.

One node: the entry point starts Ray itself (the overrides carry ``ray_kwargs.ray_init.num_cpus``). Several nodes
(or ``FLLM_FORCE_RAY_CLUSTER=1``), following the pitfalls of reference/scale.md §4:

- hosts: ``SLURM_JOB_NODELIST`` split on commas when it names plain hosts, ``scontrol show hostnames`` of it only
  when it is compressed (``node[1-3]``): one element per host, not the verl example's ``nodes_array`` bug (#548);
- fixed ports, none left to Ray's choice: the GCS on ``PORT`` (the manifest's ``verl.ray_port``), the client
  server on ``PORT+1``, the (minimal) dashboard on ``PORT+2``; node ``i`` (0 = head, then the node list's order)
  gets ``PORT+10+10i`` .. ``+5`` (node manager, object manager, runtime-env agent, dashboard agent gRPC and HTTP,
  metrics) and the worker ports ``PORT+1000+W*i`` .. ``+W-1`` (``W = FLLM_RAY_WORKER_PORTS``, 400). Distinct
  blocks per node cost nothing across hosts and let several Ray nodes share one host; the head's are checked free;
- a short per-node temp dir for Ray's sockets (``/tmp/fllm-ray-$SLURM_JOB_ID/n<i>``; a root over 36 characters
  is refused: Unix socket paths stop at 107 bytes, verl #1120);
- ``--num-cpus`` from Slurm (``SLURM_CPUS_PER_TASK``, the CPUs the cgroup shows; verl #523) and ``--num-gpus``
  from the manifest, refused when Slurm gave the node fewer (``SLURM_GPUS_ON_NODE``); the open-files limit raised;
- the environment every Ray worker needs (W&B, HF offline, verl's plugin variables, NCCL/Gloo settings,
  ``PYTHONPATH``, ...) passed explicitly as ``env NAME=value`` in front of each ``ray start``, so it reaches the
  raylets (and their workers) even through ``apptainer exec --cleanenv``; ``FLLM_RAY_ENV_PASS`` names more.
  Never passed: ``CUDA_VISIBLE_DEVICES`` (per node) and secrets (``*_API_KEY``, ``*_TOKEN``: command lines are
  visible to every user of a node; W&B and the hub run offline on compute nodes);
- the head starts here, every other node through ``srun --overlap -w <node>`` (or ``FLLM_NODE_RUNNER <node>``, a
  command that runs the rest of its arguments on that node), prefixed by ``FLLM_NODE_EXEC`` (e.g. ``apptainer exec
  --nv /path/grpo-trainer.sif``); ``srun`` must be reachable where this script runs (bind it into the container);
- a health check before the entry point (``stages.lm.verl.ray_health``): every node joined with its GPUs, ran a
  task and sees the passed variables; a ``ray start`` that exits meanwhile fails it at once;
- teardown on every exit: the entry point, then the workers, then the head (``ray start --block`` stops its
  node's processes on SIGTERM; only this job's processes, never ``ray stop``). SIGUSR2/SIGTERM/SIGINT are
  forwarded to the entry point and the script waits for it (``FLLM_STOP_GRACE_S``, 45 s, then SIGKILL), so its
  exit code is the entry point's: the stage, which sent the signal, still exits 75.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DEFAULT_ENTRY = "verl.trainer.main_ppo"
HEALTH_MODULE = "stages.lm.verl.ray_health"

TEMPLATE = r"""#!/usr/bin/env bash
# Written by stages/lm/verl/ray_launch.py: start __ENTRY__ on __NNODES__ node(s); the arguments go to it.
set -euo pipefail
PY=${FLLM_PYTHON:-__PYTHON__}
ENTRY=${FLLM_VERL_ENTRY:-__ENTRY__}
NNODES=__NNODES__
GPUS_PER_NODE=__GPUS__
PORT=__PORT__
JOIN_TIMEOUT_S=${FLLM_RAY_JOIN_TIMEOUT_S:-300}
STOP_GRACE_S=${FLLM_STOP_GRACE_S:-45}
WORKER_PORTS=${FLLM_RAY_WORKER_PORTS:-400}
read -r -a NODE_EXEC <<< "${FLLM_NODE_EXEC:-}"
read -r -a NODE_RUNNER <<< "${FLLM_NODE_RUNNER:-}"
if [[ -n "${FLLM_RAY:-}" ]]; then RAY=("$FLLM_RAY")
elif [[ -x "$(dirname "$PY")/ray" ]]; then RAY=("$(dirname "$PY")/ray")
elif command -v ray >/dev/null; then RAY=(ray)
else RAY=("$PY" -m ray.scripts.scripts); fi  # Ray installed with pip --target: no `ray` on PATH

if [[ "$NNODES" -le 1 && -z "${FLLM_FORCE_RAY_CLUSTER:-}" ]]; then
  exec "$PY" -m "$ENTRY" "$@"
fi
die() { echo "launch.sh: $*" >&2; exit 2; }   # the request or the allocation is wrong: nothing started
fail() { echo "launch.sh: $*" >&2; exit 1; }  # the cluster did not come up

# --- the hosts -----------------------------------------------------------------------------------------------
[[ -n "${SLURM_JOB_NODELIST:-}" ]] || die "SLURM_JOB_NODELIST is unset: multi-node verl runs inside one Slurm allocation"
if [[ "$NNODES" -gt 1 && ${#NODE_RUNNER[@]} -eq 0 ]] && ! command -v srun >/dev/null; then
  die "$NNODES nodes need 'srun' (run inside a Slurm job; bind it into the container) or FLLM_NODE_RUNNER"
fi
if [[ "$SLURM_JOB_NODELIST" == *\[* ]]; then  # compressed (node[1-3]): only Slurm expands it
  command -v scontrol >/dev/null || die "expanding SLURM_JOB_NODELIST=$SLURM_JOB_NODELIST needs 'scontrol' (bind it into the container)"
  expanded=$(scontrol show hostnames "$SLURM_JOB_NODELIST") || expanded=""
  [[ -n "$expanded" ]] || die "'scontrol show hostnames $SLURM_JOB_NODELIST' gave no host (no Slurm configuration here?)"
  mapfile -t NODES <<< "$expanded"
else  # plain host names (node1 or a,b): no Slurm configuration needed
  IFS=, read -r -a NODES <<< "$SLURM_JOB_NODELIST"
fi
if [[ "${#NODES[@]}" -lt "$NNODES" ]]; then
  die "the allocation has ${#NODES[@]} node(s) (${NODES[*]}), the manifest asks for $NNODES"
fi
HEAD=${SLURMD_NODENAME:-$(hostname -s)}  # this node as Slurm names it (the host name can differ)
WORKERS=()
for node in "${NODES[@]:0:$NNODES}"; do [[ "${node%%.*}" == "${HEAD%%.*}" ]] || WORKERS+=("$node"); done
if [[ "${#WORKERS[@]}" -ne $((NNODES - 1)) ]]; then
  die "this host ($HEAD) is not among the first $NNODES node(s) of the allocation (${NODES[*]}): run the launcher on the first node"
fi
HEAD_IP=${FLLM_RAY_HEAD_IP:-$(hostname -I 2>/dev/null | awk '{print $1}')}
HEAD_IP=${HEAD_IP:-$(hostname -i | awk '{print $1}')}
export RAY_ADDRESS="$HEAD_IP:$PORT"

# --- resources, ports, temp dirs ------------------------------------------------------------------------------
CPUS=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-$(nproc)}}
if [[ -n "${SLURM_GPUS_ON_NODE:-}" && "$SLURM_GPUS_ON_NODE" -lt "$GPUS_PER_NODE" ]]; then
  die "Slurm gave this node $SLURM_GPUS_ON_NODE GPU(s), the manifest asks for $GPUS_PER_NODE per node"
fi
LAST_PORT=$((PORT + 1000 + WORKER_PORTS * NNODES - 1))
(( NNODES <= 98 && LAST_PORT <= 65535 )) || die "$NNODES node(s) from port $PORT need ports up to $LAST_PORT: lower verl.ray_port (or FLLM_RAY_WORKER_PORTS)"
TMP_ROOT=${FLLM_RAY_TMPDIR:-/tmp/fllm-ray-${SLURM_JOB_ID:-$$}}
(( ${#TMP_ROOT} <= 36 )) || die "Ray temp dir $TMP_ROOT is too long: socket paths under it must stay within 107 bytes (FLLM_RAY_TMPDIR, e.g. /tmp/r\$SLURM_JOB_ID)"
[[ "$TMP_ROOT" != *[[:space:]]* ]] || die "Ray temp dir '$TMP_ROOT' contains a space"
set_node_args() {  # node index -> NODE_ARGS, the `ray start` options of that node
  local base=$((PORT + 10 + 10 * $1)) workers=$((PORT + 1000 + WORKER_PORTS * $1))
  NODE_ARGS=(--num-cpus="$CPUS" --num-gpus="$GPUS_PER_NODE" --temp-dir="$TMP_ROOT/n$1"
    --node-manager-port="$base" --object-manager-port=$((base + 1)) --runtime-env-agent-port=$((base + 2))
    --dashboard-agent-grpc-port=$((base + 3)) --dashboard-agent-listen-port=$((base + 4))
    --metrics-export-port=$((base + 5)) --min-worker-port="$workers" --max-worker-port=$((workers + WORKER_PORTS - 1))
    --disable-usage-stats --block)
}
for p in $(seq "$PORT" $((PORT + 2))) $(seq $((PORT + 10)) $((PORT + 15))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    fail "port $p is already in use on $HEAD (another job's Ray?): use whole nodes or another verl.ray_port"
  fi
done
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

# --- the environment every Ray node (and so every Ray worker) gets ----------------------------------------------
export RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 RAY_USAGE_STATS_ENABLED=0
ENV_PASS=(env)
EXPECT_ENV=()
declare -A SEEN=()
for name in $(compgen -e) ${FLLM_RAY_ENV_PASS:-}; do
  [[ -z "${SEEN[$name]:-}" && -n "${!name+x}" ]] || continue
  SEEN[$name]=1
  case "$name" in
    CUDA_VISIBLE_DEVICES|RAY_ADDRESS) continue ;;  # per node / set by `ray start`
    *_API_KEY|*_TOKEN|*SECRET*|*PASSWORD*) continue ;;  # command lines are visible to every user of a node
    WANDB_*|HF_*|TRANSFORMERS_*|VERL_*|NCCL_*|GLOO_*|TORCH_*|PYTORCH_*|VLLM_*|CUDA_*|FLLM_*|TOKENIZERS_*|RAY_*) ;;
    PYTHONPATH|OMP_NUM_THREADS|TZ) ;;
    *) [[ " ${FLLM_RAY_ENV_PASS:-} " == *" $name "* ]] || continue ;;
  esac
  ENV_PASS+=("$name=${!name}")
  [[ "$name" == RAY_* ]] || EXPECT_ENV+=("$name")
done

# --- stop and teardown ----------------------------------------------------------------------------------------
STOP_SIG="" STOP_DEADLINE=0 DRIVER_PID="" HEALTH_PID="" HEAD_PID=""
WORKER_PIDS=()
on_stop() {
  if [[ -z "$STOP_SIG" ]]; then
    echo "launch.sh: SIG$1 received; stopping" >&2
    STOP_DEADLINE=$((SECONDS + STOP_GRACE_S))
  fi
  STOP_SIG=$1
  if [[ -n "$DRIVER_PID" ]]; then
    kill -s "$1" "$DRIVER_PID" 2>/dev/null || true
  elif [[ -n "$HEALTH_PID" ]]; then
    kill "$HEALTH_PID" 2>/dev/null || true
  fi
}
trap 'on_stop USR2' USR2
trap 'on_stop TERM' TERM
trap 'on_stop INT' INT
stop_pids() {  # SIGTERM, up to 30 s, then SIGKILL
  local pids=() pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && pids+=("$pid"); done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 30); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 1 ]] || return 0
    sleep 1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}
cleanup() {
  trap '' USR2 TERM INT
  stop_pids "$DRIVER_PID" "$HEALTH_PID"
  stop_pids "${WORKER_PIDS[@]}"
  stop_pids "$HEAD_PID"
}
trap cleanup EXIT
wait_child() {  # wait for a background child across trapped signals; return its exit code
  local rc=0 late=0
  while :; do
    rc=0; wait "$1" || rc=$?
    if (( rc > 128 )); then
      kill -0 "$1" 2>/dev/null && continue  # a trapped signal interrupted `wait`
      wait "$1" 2>/dev/null || late=$?
      (( late == 127 )) || rc=$late
    fi
    return "$rc"
  done
}
stopped() { [[ -z "$STOP_SIG" ]] || exit $((128 + $(kill -l "$STOP_SIG"))); }

# --- start Ray: the head here, a worker on every other node -------------------------------------------------------
echo "launch.sh: Ray head on $HEAD ($RAY_ADDRESS), nodes: $HEAD ${WORKERS[*]}; temp dirs $TMP_ROOT/n<i>"
WATCH=()
set_node_args 0
"${ENV_PASS[@]}" "${RAY[@]}" start --head --node-ip-address="$HEAD_IP" --port="$PORT" --ray-client-server-port=$((PORT + 1)) \
  --include-dashboard=false --dashboard-port=$((PORT + 2)) "${NODE_ARGS[@]}" &
HEAD_PID=$!
WATCH+=(--watch-pid "$HEAD_PID=head $HEAD")
i=0
for node in "${WORKERS[@]}"; do
  i=$((i + 1))
  if [[ ${#NODE_RUNNER[@]} -gt 0 ]]; then run_on=("${NODE_RUNNER[@]}" "$node"); else
    run_on=(srun --overlap --nodes=1 --ntasks=1 -w "$node"); fi
  set_node_args $i
  "${run_on[@]}" "${NODE_EXEC[@]}" "${ENV_PASS[@]}" "${RAY[@]}" start --address="$RAY_ADDRESS" "${NODE_ARGS[@]}" &
  WORKER_PIDS+=($!)
  WATCH+=(--watch-pid "$!=worker $node")
done
stopped
"$PY" -m __HEALTH__ --address "$RAY_ADDRESS" --nodes "$NNODES" --gpus-per-node "$GPUS_PER_NODE" \
  --timeout "$JOIN_TIMEOUT_S" --expect-env "$(IFS=,; echo "${EXPECT_ENV[*]}")" "${WATCH[@]}" &
HEALTH_PID=$!
rc=0; wait_child "$HEALTH_PID" || rc=$?
HEALTH_PID=""
stopped
(( rc == 0 )) || fail "the Ray cluster is not healthy (above); Ray's logs are under $TMP_ROOT/n<i>/session_latest/logs on each node"

# --- the entry point ------------------------------------------------------------------------------------------
echo "launch.sh: $NNODES Ray node(s) up; starting $ENTRY"
"$PY" -m "$ENTRY" "$@" &
DRIVER_PID=$!
[[ -z "$STOP_SIG" ]] || on_stop "$STOP_SIG"
while kill -0 "$DRIVER_PID" 2>/dev/null; do  # polled, so that a stop signal is handled at once
  if [[ -n "$STOP_SIG" ]] && (( SECONDS >= STOP_DEADLINE )); then kill -9 "$DRIVER_PID" 2>/dev/null || true; fi
  sleep 1 & wait $! || true
done
rc=0; wait "$DRIVER_PID" || rc=$?
echo "launch.sh: $ENTRY exited $rc${STOP_SIG:+ after SIG$STOP_SIG}; stopping Ray"
exit "$rc"
"""


def render_launcher(nnodes: int, gpus_per_node: int, port: int, python: str, entry: str = DEFAULT_ENTRY) -> str:
    return (
        TEMPLATE.replace("__NNODES__", str(int(nnodes)))
        .replace("__GPUS__", str(int(gpus_per_node)))
        .replace("__PORT__", str(int(port)))
        .replace("__PYTHON__", shlex.quote(python))
        .replace("__HEALTH__", HEALTH_MODULE)
        .replace("__ENTRY__", shlex.quote(entry))
    )


def write_launcher(dest: Path, nnodes: int, gpus_per_node: int, port: int, python: str,
                   entry: str = DEFAULT_ENTRY) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render_launcher(nnodes, gpus_per_node, port, python, entry), encoding="utf-8")
    dest.chmod(0o755)
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m stages.lm.verl.ray_launch --nodes 2 ... --out launch.sh``: write the script (the smoke job)."""
    ap = argparse.ArgumentParser(prog="python -m stages.lm.verl.ray_launch", description=main.__doc__)
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--gpus-per-node", type=int, default=0)
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--entry", default=DEFAULT_ENTRY, help="module run with `python -m` once Ray is up")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.nodes < 1 or args.gpus_per_node < 0 or not 1024 <= args.port <= 65535:
        ap.error("--nodes must be >= 1, --gpus-per-node >= 0, --port within 1024-65535")
    print(write_launcher(args.out, args.nodes, args.gpus_per_node, args.port, args.python, args.entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
