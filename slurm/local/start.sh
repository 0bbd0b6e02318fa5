#!/usr/bin/env bash
# Bring up a single-node Slurm cluster on this machine for the conductor's tests (reference/infra.md §2).
#
# Why this shape: CI machines have no systemd and hybrid v1/v2 cgroups, so the daemons run in the foreground
# (-D) in the background of this script, without cgroup plugins, with two fake GPUs (gres on /dev/tty1-2, which
# task/none never binds) and fast scheduler passes so dependent jobs start within seconds. Every daemon this script
# starts has its PID recorded under $FLLM_SLURM_RUN; stop.sh stops exactly those PIDs, never by process name.
# Installs nothing: the Debian packages slurmctld, slurmd, slurm-client and munge must be present (make system).
# Idempotent: if a cluster already answers, it says so and starts nothing.
set -euo pipefail

RUN_DIR="${FLLM_SLURM_RUN:-/run/fllm-slurm}"
CONF_DIR=/etc/slurm
MARK="# written by forgetting-llms slurm/local/start.sh"
TIMEOUT="${FLLM_SLURM_START_TIMEOUT:-60}"

die() { echo "slurm/local/start.sh: $*" >&2; exit 1; }
for cmd in munged slurmctld slurmd sbatch scontrol sinfo; do
  command -v "$cmd" >/dev/null || die "$cmd not found: install slurmctld slurmd slurm-client munge (make system)"
done
[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root on the test cluster)"

wait_for() {  # wait_for <what> <command...>: poll until the command succeeds or TIMEOUT seconds pass
  local what="$1"; shift
  local end=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}
node_idle() { sinfo -h -N -o %T 2>/dev/null | grep -qx idle; }
ctld_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

if ctld_up && node_idle; then
  echo "slurm/local: a cluster is already up; starting nothing"
  exit 0
fi

if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
  die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to replace a real configuration"
fi

HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MIB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
[ "$MEM_MIB" -gt 512 ] || MEM_MIB=512
for dev in /dev/tty1 /dev/tty2; do
  [ -c "$dev" ] || die "$dev is not a character device; the fake GPUs need /dev/tty1 and /dev/tty2"
done

mkdir -p "$RUN_DIR" "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF_DIR/slurm.conf" <<CONF
$MARK
ClusterName=fllm-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MailProg=/bin/true
# no cgroup plugins: cgroups are hybrid v1/v2 here, and no systemd is needed
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=10
Waittime=0
InactiveLimit=0
GresTypes=gpu
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MIB Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$CONF_DIR/gres.conf" <<CONF
$MARK
NodeName=$HOST Name=gpu File=/dev/tty[1-2]
CONF

# munge: the key must exist, 0400, owned by munge; munged daemonizes and writes its own pid file.
if ! munge_ok; then
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  rm -f /run/munge/munged.pid
  su -s /bin/sh munge -c /usr/sbin/munged
  wait_for munge munge_ok || die "munged did not start"
  cp /run/munge/munged.pid "$RUN_DIR/munged.pid"
fi

# Daemons detach from this script's stdio (a caller waiting on our output must not wait on them).
if ! ctld_up; then
  setsid slurmctld -D -i </dev/null >>/var/log/slurm/slurmctld.out 2>&1 &
  echo $! > "$RUN_DIR/slurmctld.pid"
  wait_for slurmctld ctld_up || die "slurmctld did not answer within ${TIMEOUT}s; see /var/log/slurm/slurmctld.log"
fi
if [ ! -s "$RUN_DIR/slurmd.pid" ] || ! kill -0 "$(cat "$RUN_DIR/slurmd.pid")" 2>/dev/null; then
  setsid slurmd -D </dev/null >>/var/log/slurm/slurmd.out 2>&1 &
  echo $! > "$RUN_DIR/slurmd.pid"
fi
if ! wait_for node node_idle; then
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  wait_for node node_idle || die "node $HOST is not idle: $(sinfo -h -N -o '%T %E'); see /var/log/slurm/slurmd.log"
fi
echo "slurm/local: up (node $HOST, $CPUS CPUs, ${MEM_MIB} MiB, gres gpu:2 on /dev/tty[1-2]); PIDs in $RUN_DIR"
