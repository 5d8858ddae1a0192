#!/usr/bin/env bash
# Issue 26's GPU numbers in one call of a lent device (its `run` tool, repo root, $OUT set):
#   bash docs/scripts/gpu_issue26.sh
# 1. `usgan bench` Stage-I rows at batch 16 and 64 and the Stage-II row at batch 16, each
#    against the plain fp32 script (the bars: 1.5x, 2x, 1.5x), and the `classes` row (two
#    classes' steps one after the other against at once);
# 2. wall time of a two-class `usgan train --jobs 2` against one class alone (the bar: 1.2x),
#    and of the two classes as two processes at once (threads share one GIL and, on a GPU,
#    one autograd thread: which of the two is the way to several GANs at once);
# 3. while the call has time left (PROBE_UNTIL seconds since the start, default 420): the
#    trainer's step eager, compiled, and compiled with CUDA graphs (docs/scripts/compile_probe.py,
#    modes PROBE_MODES), per Stage-I network at batch 16, then 64.
# Everything it measures lands in $OUT (a few small files). Written on a CPU-only machine
# (2026-12-05, parts 2 and 3 extended 2026-12-06) and not yet run on a GPU: read its log before
# quoting a number.
set -uo pipefail
OUT=${OUT:-runs/gpu-issue26}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu STEPS=20: a dry run of the script itself
STEPS=${STEPS:-1000}
PROBE_UNTIL=${PROBE_UNTIL:-420}
PROBE_MODES=${PROBE_MODES:-eager,default,reduce-overhead}  # PROBE_MODES=eager on a CPU
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }

log "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1)"
if ! python3 -c "import usgan" 2>/dev/null; then  # the device's own torch stays
    python3 -m pip install -q --no-deps --no-build-isolation -e . >>"$OUT/log.txt" 2>&1 \
        || python3 -m pip install -q --no-deps . >>"$OUT/log.txt" 2>&1
fi
python3 -c "import torch, usgan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$OUT/log.txt"

for batch in 16 64; do
    only=$([ "$batch" = 16 ] && echo stage1,stage2,classes || echo stage1)
    log "usgan bench --only $only --batch $batch"
    python3 -m usgan bench --device "$DEVICE" --only "$only" --batch "$batch" \
        --steps $((STEPS < 50 ? 2 : 50)) \
        --json "$OUT/bench-b$batch.json" 2>&1 | tee -a "$OUT/log.txt"
done

train() {  # classes, jobs, name: the wall seconds of a Stage-I run on phantom images
    local t0 t1
    t0=$(date +%s.%N)
    python3 -m usgan train --device "$DEVICE" --data phantom:n=64 --classes "$1" --stage2 off \
        --max-steps "$STEPS" --jobs "$2" --quiet --sample-every 1000 --checkpoint-every 1000 \
        --out "$OUT/runs/$3" >>"$OUT/log.txt" 2>&1
    t1=$(date +%s.%N)
    python3 -c "print(round($t1 - $t0, 2))"
}
procs() {  # the two classes as two `usgan train` processes at once (no shared GIL)
    local t0 t1
    t0=$(date +%s.%N)
    train healthy 1 proc-a >/dev/null &
    train steatosis 1 proc-b >/dev/null &
    wait
    t1=$(date +%s.%N)
    python3 -c "print(round($t1 - $t0, 2))"
}
one=$(train healthy 1 one)
two=$(train healthy,steatosis 2 two)
seq=$(train healthy,steatosis 1 seq)
par=$(procs)
log "one class: $one s; two classes --jobs 2: $two s; two classes --jobs 1: $seq s; \
two classes as two processes: $par s"
python3 -c "import json; json.dump({'one_class_s': $one, 'two_jobs2_s': $two, \
'two_jobs1_s': $seq, 'two_processes_s': $par, 'ratio_two_over_one': round($two / $one, 3), \
'ratio_processes_over_one': round($par / $one, 3)}, open('$OUT/jobs.json', 'w'), indent=1)"
rm -rf "$OUT/runs"
cat "$OUT/jobs.json"

for batch in 16 64; do
    for name in dcgan dcgan-sn dcgan-sn-sa; do
        if ((SECONDS > PROBE_UNTIL)); then
            log "compile probe $name batch $batch skipped: $SECONDS s spent"
            continue
        fi
        log "compile probe $name batch $batch ($SECONDS s spent)"
        timeout 180 python3 docs/scripts/compile_probe.py --device "$DEVICE" --name "$name" \
            --batch "$batch" --nchw --modes "$PROBE_MODES" --steps $((STEPS < 50 ? 3 : 30)) \
            2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
    done
done
