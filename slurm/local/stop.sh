#!/usr/bin/env bash
# Tear down the single-node test cluster that start.sh brought up: stop the PIDs it recorded, in reverse start order
# (slurmd, slurmctld, munged), never by process name. A recorded PID whose process is now something else (the PID
# was reused) is left alone. Daemons this script did not start (none recorded) are not touched.
set -uo pipefail

RUN_DIR="${FLLM_SLURM_RUN:-/run/fllm-slurm}"
TIMEOUT="${FLLM_SLURM_STOP_TIMEOUT:-30}"

stop_one() {  # stop_one <name> <expected comm>
  local rec="$RUN_DIR/$1.pid" pid comm end
  [ -s "$rec" ] || return 0
  pid="$(tr -dc 0-9 < "$rec")"
  rm -f "$rec"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  if [ "$comm" != "$2" ]; then
    echo "slurm/local: PID $pid is now '$comm', not $2; leaving it alone" >&2
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || return 0
  end=$((SECONDS + TIMEOUT))
  while [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/stat" 2>/dev/null | awk '{print $3}')" != Z ]; do
    if [ $SECONDS -ge $end ]; then kill -KILL "$pid" 2>/dev/null; break; fi
    sleep 0.2
  done
  echo "slurm/local: stopped $1 (PID $pid)"
}

stop_one slurmd slurmd
stop_one slurmctld slurmctld
stop_one munged munged
exit 0
