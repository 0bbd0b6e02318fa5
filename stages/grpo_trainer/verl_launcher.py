"""The small bash script that starts verl's GRPO inside one Slurm allocation (or on a bare machine).

Why a script: Ray across nodes is started with ``srun``/``ray start`` per node, which is shell work; writing it into
the run folder (``verl/launch.sh``) records exactly what ran and lets a person rerun it by hand. The overrides are
passed as arguments, never spliced into the text, so no path can break the quoting.

One node: ``main_ppo`` starts Ray itself (the overrides carry ``ray_kwargs.ray_init.num_cpus``). Several nodes: the
host list is ``SLURM_JOB_NODELIST`` split on commas when it names plain hosts (``node1``, ``a,b``), and ``scontrol show
hostnames`` of it only when it is compressed (``node[1-3]``), since ``scontrol`` needs a Slurm configuration on the
host (one element per host, not the verl example's ``nodes_array=("$nodes")`` bug, verl #548). This host starts the
Ray head, every other host a worker through ``srun --overlap``, the script waits until all nodes joined, then
``main_ppo`` attaches through ``RAY_ADDRESS``. The head runs where the stage runs (inside its container, if any); on
the other hosts ``FLLM_NODE_EXEC`` (e.g. ``apptainer exec --nv /path/grpo-trainer.sif``) prefixes the worker
command, and ``srun``/``scontrol`` must be reachable from the stage's environment (bind them into the container).
"""

from __future__ import annotations

import shlex
from pathlib import Path

TEMPLATE = r"""#!/usr/bin/env bash
# Written by grpo-trainer: start verl GRPO (main_ppo) on __NNODES__ node(s); arguments are the Hydra overrides.
set -euo pipefail
PY=${FLLM_PYTHON:-__PYTHON__}
ENTRY=${FLLM_VERL_ENTRY:-verl.trainer.main_ppo}
NNODES=__NNODES__
GPUS_PER_NODE=__GPUS__
PORT=__PORT__
JOIN_TIMEOUT_S=${FLLM_RAY_JOIN_TIMEOUT_S:-300}
read -r -a NODE_EXEC <<< "${FLLM_NODE_EXEC:-}"
RAY=${FLLM_RAY:-$(dirname "$PY")/ray}
[[ -x "$RAY" ]] || RAY=ray

if [[ "$NNODES" -le 1 && -z "${FLLM_FORCE_RAY_CLUSTER:-}" ]]; then
  exec "$PY" -m "$ENTRY" "$@"
fi

[[ -n "${SLURM_JOB_NODELIST:-}" ]] || { echo "launch.sh: SLURM_JOB_NODELIST is unset: multi-node verl runs inside one Slurm allocation" >&2; exit 2; }
if [[ "$NNODES" -gt 1 ]] && ! command -v srun >/dev/null; then
  echo "launch.sh: $NNODES nodes need 'srun' (run inside a Slurm job; bind it into the container)" >&2; exit 2
fi
if [[ "$SLURM_JOB_NODELIST" == *\[* ]]; then  # compressed (node[1-3]): only Slurm expands it
  if ! command -v scontrol >/dev/null; then
    echo "launch.sh: expanding SLURM_JOB_NODELIST=$SLURM_JOB_NODELIST needs 'scontrol' (bind it into the container)" >&2
    exit 2
  fi
  expanded=$(scontrol show hostnames "$SLURM_JOB_NODELIST") || expanded=""
  if [[ -z "$expanded" ]]; then
    echo "launch.sh: 'scontrol show hostnames $SLURM_JOB_NODELIST' gave no host (no Slurm configuration here?)" >&2
    exit 2
  fi
  mapfile -t NODES <<< "$expanded"
else  # plain host names (node1 or a,b): no Slurm configuration needed
  IFS=, read -r -a NODES <<< "$SLURM_JOB_NODELIST"
fi
if [[ "${#NODES[@]}" -lt "$NNODES" ]]; then
  echo "launch.sh: the allocation has ${#NODES[@]} node(s) (${NODES[*]}), the manifest asks for $NNODES" >&2; exit 2
fi
HEAD=${SLURMD_NODENAME:-$(hostname -s)}  # this node as Slurm names it (the host name can differ)
HEAD_IP=$(hostname -I 2>/dev/null | awk '{print $1}')
HEAD_IP=${HEAD_IP:-$(hostname -i | awk '{print $1}')}
CPUS=${SLURM_CPUS_ON_NODE:-${SLURM_CPUS_PER_TASK:-$(nproc)}}
export RAY_ADDRESS="$HEAD_IP:$PORT"

cleanup() {  # stop only this job's Ray processes: `ray stop` would also kill other jobs' Ray on a shared node
  local pids
  pids=$(jobs -p)
  [[ -n "$pids" ]] || return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 30); do kill -0 $pids 2>/dev/null || return 0; sleep 1; done
  kill -9 $pids 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM INT USR2

echo "launch.sh: Ray head on $HEAD ($RAY_ADDRESS), nodes: ${NODES[*]}"
"$RAY" start --head --node-ip-address="$HEAD_IP" --port="$PORT" --num-cpus="$CPUS" --num-gpus="$GPUS_PER_NODE" \
  --disable-usage-stats --block &
joined=1
for node in "${NODES[@]:0:$NNODES}"; do
  [[ "${node%%.*}" == "${HEAD%%.*}" ]] && continue
  srun --overlap --nodes=1 --ntasks=1 -w "$node" "${NODE_EXEC[@]}" "$RAY" start --address="$RAY_ADDRESS" \
    --num-cpus="$CPUS" --num-gpus="$GPUS_PER_NODE" --disable-usage-stats --block &
  joined=$((joined + 1))
done
deadline=$((SECONDS + JOIN_TIMEOUT_S))
until [[ "$("$PY" -c 'import ray; ray.init(logging_level="ERROR"); print(sum(n["Alive"] for n in ray.nodes()))' 2>/dev/null | tail -n1)" == "$joined" ]]; do
  if (( SECONDS > deadline )); then echo "launch.sh: only some of $joined Ray nodes joined within ${JOIN_TIMEOUT_S}s" >&2; exit 1; fi
  sleep 5
done
echo "launch.sh: $joined Ray node(s) up; starting $ENTRY"
"$PY" -m "$ENTRY" "$@"
"""


def render_launcher(nnodes: int, gpus_per_node: int, port: int, python: str) -> str:
    return (
        TEMPLATE.replace("__NNODES__", str(int(nnodes)))
        .replace("__GPUS__", str(int(gpus_per_node)))
        .replace("__PORT__", str(int(port)))
        .replace("__PYTHON__", shlex.quote(python))
    )


def write_launcher(dest: Path, nnodes: int, gpus_per_node: int, port: int, python: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render_launcher(nnodes, gpus_per_node, port, python), encoding="utf-8")
    dest.chmod(0o755)
    return dest
