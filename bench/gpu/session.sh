#!/usr/bin/env bash
# There (the GPU machine): one session's measurements, run detached so that they outlive the device calls.
#
# Why detached: a device call lasts at most 10 minutes and a machine stays warm only 30 s between calls, while the
# wheel set needs several calls to arrive. Started with `setsid` (a new process session survives the call that
# started it), the torch-only benches run while the wheels travel, and the verl/vLLM steps start as soon as
# install.sh has run; each later call only sleeps, prints the progress and copies the results out.
#
# Usage: setsid bash bench/gpu/session.sh PHASE SRC DATA RES >/dev/null 2>&1 < /dev/null &
#   PHASE torch   the benches that need only torch and transformers (representations, memory, exact KL)
#   PHASE verl    waits for RES/installed (written after install.sh) and for the torch phase (at most
#                 TORCH_GRACE seconds, then stops it), then π-Distill on verl, SPIN with vLLM, GRPO
#                 stop/resume/evaluate, SFT verl vs native, GRPO on verl beside π-Distill, any STEPS_EXTRA commands,
#                 then the queue (RES/queue) until RES/stop exists
#   PHASE multi   (2-4 GPUs, issue 26; GPUS=N, default 2) waits for RES/installed, then SPIN on 1 and N GPUs at 1.7B
#                 and 8B with a SIGUSR2 stop and resume, native SFT at 8B on N GPUs with and without optimizer
#                 offload, GRPO on verl on N GPUs (stop, resume), π-Distill and GRPO on verl on N GPUs
#   SRC a snapshot of the project (git archive), DATA the bench data (bench/README.md), RES the results folder.
# Progress: RES/progress.txt (one line per step: name, exit code, seconds, free disk); logs: RES/<step>.log.
# A step whose RES/skip-NAME exists is skipped (a later call decides when device time runs short); with
# ONLY="NAME ..." only those steps run (and prepare), e.g. ONLY="sft pi_grpo pi_report".
set -uo pipefail
phase=${1:?torch or verl}; src=${2:?source folder}; data=${3:?bench data folder}; res=${4:?results folder}
mkdir -p "$res"; cd "$src" || exit 2
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

step() {  # step NAME CMD...: run, log, and record the exit code and the seconds it took
    local name=$1; shift; local t0=$SECONDS
    if [ -f "$res/skip-$name" ] || { [ -n "${ONLY:-}" ] && [[ " prepare $ONLY " != *" $name "* ]]; }; then
        echo "$(date +%T) skip  $name" >> "$res/progress.txt"; return
    fi
    echo "$(date +%T) start $name" >> "$res/progress.txt"
    "$@" > "$res/$name.log" 2>&1; local rc=$?
    echo "$(date +%T) done  $name rc=$rc s=$((SECONDS - t0)) disk_free=$(df -h --output=avail /tmp | tail -1 | tr -d ' ')" \
        >> "$res/progress.txt"
}

if [ "$phase" = torch ]; then
    echo $$ > "$res/torch.pid"
    export PYTHONPATH=$src
    step representations python3 bench/bench_representations.py --out "$res/rep" --shape 4B --extra-weight-shape 14B
    step kl_exact env OUT="$res/kl" python3 bench/bench_kl_exact.py
    step memory python3 bench/bench_memory.py --out "$res/mem"
    touch "$res/torch.done"
    exit 0
fi

if [ "$phase" = multi ]; then
    until [ -f "$res/installed" ]; do sleep 2; done
    export PYTHONPATH=/tmp/site:$src PATH=/tmp/site/bin:$PATH
    n=${GPUS:-2}
    mg=(python3 bench/gpu/multi_gpu.py --work /tmp/gpu-work --data "$data" --gpus "$n")
    step multi_prepare "${mg[@]}" --out "$res/multi" prepare --shapes 1.7B,8B
    step multi_spin_1.7B "${mg[@]}" --out "$res/multi/1.7B" spin --shape 1.7B
    step multi_spin_8B "${mg[@]}" --out "$res/multi/8B" spin --shape 8B --prompts 128
    step multi_sft_8B "${mg[@]}" --out "$res/multi/8B" sft --shape 8B
    vp=(python3 bench/gpu/verl_paths.py --work /tmp/gpu-work --out "$res/multi/verl" --data "$data" --gpus "$n" --grpo-shape 1.7B)
    step multi_verl_prepare "${vp[@]}" prepare --tokenizer "$data/tokenizer"
    step multi_grpo_first "${vp[@]}" grpo --phase first --steps 3 --stop-at 1
    step multi_grpo_resume "${vp[@]}" grpo --phase resume --steps 3 --stop-at 1
    pi=(python3 bench/bench_pi_distill_verl.py --data "$data" --work /tmp/gpu-work --out "$res/multi/pi" --gpus "$n")
    step multi_pi "${pi[@]}" pi --steps 3
    step multi_pi_grpo "${pi[@]}" grpo --steps 3
    step multi_pi_report "${pi[@]}" report
    touch "$res/multi.done"
    exit 0
fi

[ "$phase" = verl ] || { echo "unknown phase $phase" >&2; exit 2; }
until [ -f "$res/installed" ]; do sleep 2; done
waited=0
until [ -f "$res/torch.done" ] || [ ! -f "$res/torch.pid" ] || [ "$waited" -ge "${TORCH_GRACE:-120}" ]; do
    sleep 5; waited=$((waited + 5))
done
if [ ! -f "$res/torch.done" ] && [ -f "$res/torch.pid" ]; then
    kill -- -"$(cat "$res/torch.pid")" 2>/dev/null; pkill -f bench/bench_ 2>/dev/null
    echo "$(date +%T) stopped the torch phase after ${waited}s" >> "$res/progress.txt"; sleep 5
fi
export PYTHONPATH=/tmp/site:$src PATH=/tmp/site/bin:$PATH
vp=(python3 bench/gpu/verl_paths.py --work /tmp/gpu-work --out "$res/verl" --data "$data")
pi=(python3 bench/bench_pi_distill_verl.py --data "$data" --work /tmp/gpu-work --out "$res/pi" --steps "${PI_STEPS:-3}")
# The paths never run before go first (π-Distill on verl, SPIN with vLLM), so that a failure found early can be
# fixed here and rerun through the queue below while the rest runs.
step prepare "${vp[@]}" prepare --tokenizer "$data/tokenizer"
step pi "${pi[@]}" pi
step spin python3 bench/bench_spin.py --out "$res/spin" --prompts 256 --offload off
step grpo_first "${vp[@]}" grpo --phase first --steps "${GRPO_STEPS:-2}" --stop-at "${GRPO_STOP_AT:-1}"
step grpo_resume "${vp[@]}" grpo --phase resume --steps "${GRPO_STEPS:-2}" --stop-at "${GRPO_STOP_AT:-1}"
step evaluate "${vp[@]}" evaluate
step sft "${vp[@]}" sft --sft-steps 8
step pi_grpo "${pi[@]}" grpo
step pi_report "${pi[@]}" report
for extra in ${STEPS_EXTRA:-}; do step "extra-$(basename "$extra" .py)" python3 "$extra" --out "$res/extra"; done
touch "$res/verl.done"
# The queue: a later call appends "NAME COMMAND..." lines to RES/queue (after copying any fixed files into SRC);
# each runs once, in order, until RES/stop exists.
done_lines=0
until [ -f "$res/stop" ]; do
    total=$(wc -l < "$res/queue" 2>/dev/null || echo 0)
    while [ "$done_lines" -lt "$total" ]; do
        done_lines=$((done_lines + 1))
        line=$(sed -n "${done_lines}p" "$res/queue"); name=${line%% *}; cmd=${line#* }
        step "$name" bash -c "$cmd"
    done
    sleep 2
done
