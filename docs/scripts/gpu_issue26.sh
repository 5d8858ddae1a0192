#!/usr/bin/env bash
# Issue 26's GPU numbers in one call of a lent device (its `run` tool, repo root, $OUT set):
#   bash docs/scripts/gpu_issue26.sh
# 1. `usgan bench` Stage-I rows at batch 16 and 64 and the Stage-II row at batch 16, each
#    against the plain fp32 script (the bars: 1.5x, 2x, 1.5x), and the `classes` row (two
#    classes' steps one after the other against at once);
# 2. wall time of a two-class `usgan train --jobs 2` against one class alone (the bar: 1.2x),
#    and of the two classes as two processes at once (threads share one GIL and, on a GPU,
#    one autograd thread: which of the two is the way to several GANs at once);
# 3. the rows of 1. with usgan's G and D compiled as `usgan train --compile --compile-mode
#    MODE` trains them (`usgan bench --compile MODE`), for each of COMPILE_MODES until
#    DEADLINE seconds since the start: reduce-overhead is CUDA graphs, the lever for a
#    launch-bound step.
# Everything it measures lands in $OUT (a few small files). Written on a CPU-only machine
# (2026-12-05; the two-process timing 2026-12-06, the compiled rows 2026-12-06 in place of
# docs/scripts/compile_probe.py) and not yet run on a GPU: read its log before quoting a number.
set -uo pipefail
OUT=${OUT:-runs/gpu-issue26}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu STEPS=20: a dry run of the script itself
STEPS=${STEPS:-1000}
COMPILE_MODES=${COMPILE_MODES:-reduce-overhead default}
DEADLINE=${DEADLINE:-520}  # the compiled rows stop by then (the call's timeout_s: 560)
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }

log "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1)"
if ! python3 -c "import usgan" 2>/dev/null; then  # the device's own torch stays
    python3 -m pip install -q --no-deps --no-build-isolation -e . >>"$OUT/log.txt" 2>&1 \
        || python3 -m pip install -q --no-deps . >>"$OUT/log.txt" 2>&1
fi
python3 -c "import torch, usgan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$OUT/log.txt"

bench() {  # batch, workloads, name, seconds, options...: `usgan bench` into $OUT/bench-NAME.json
    log "usgan bench --only $2 --batch $1 ${*:5} ($SECONDS s spent, at most $4 s)"
    timeout "$4" python3 -m usgan bench --device "$DEVICE" --only "$2" --batch "$1" \
        --steps $((STEPS < 50 ? 2 : 50)) "${@:5}" --json "$OUT/bench-$3.json" 2>&1 \
        | grep -v Warning | tee -a "$OUT/log.txt"
}
bench 16 stage1,stage2,classes b16 300
bench 64 stage1 b64 300

elapsed() {  # command...: run it, print its wall seconds
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    python3 -c "print(round($t1 - $t0, 2))"
}
train() {  # classes, jobs, name: a Stage-I run on phantom images
    python3 -m usgan train --device "$DEVICE" --data phantom:n=64 --classes "$1" --stage2 off \
        --max-steps "$STEPS" --jobs "$2" --quiet --sample-every 1000 --checkpoint-every 1000 \
        --out "$OUT/runs/$3" >>"$OUT/log.txt" 2>&1
}
procs() {  # the two classes as two `usgan train` processes at once (no shared GIL)
    train healthy 1 proc-a &
    train steatosis 1 proc-b &
    wait
}
log "usgan train: one class, two classes --jobs 2, --jobs 1, two processes ($SECONDS s spent)"
one=$(elapsed train healthy 1 one)
two=$(elapsed train healthy,steatosis 2 two)
seq=$(elapsed train healthy,steatosis 1 seq)
par=$(elapsed procs)
log "one class: $one s; two classes --jobs 2: $two s; two classes --jobs 1: $seq s; \
two classes as two processes: $par s"
python3 -c "import json; json.dump({'one_class_s': $one, 'two_jobs2_s': $two, \
'two_jobs1_s': $seq, 'two_processes_s': $par, 'ratio_two_over_one': round($two / $one, 3), \
'ratio_processes_over_one': round($par / $one, 3)}, open('$OUT/jobs.json', 'w'), indent=1)"
rm -rf "$OUT/runs"
cat "$OUT/jobs.json"; echo
for mode in $COMPILE_MODES; do
    for batch in 16 64; do
        left=$((DEADLINE - SECONDS))
        if ((left < 90)); then
            log "usgan bench --compile $mode --batch $batch skipped: $SECONDS s spent"
            continue
        fi
        bench "$batch" "$([ "$batch" = 16 ] && echo stage1,stage2 || echo stage1)" \
            "$mode-b$batch" "$left" --compile "$mode"
    done
done
log "done ($SECONDS s)"
