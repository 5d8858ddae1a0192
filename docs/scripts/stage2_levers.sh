#!/usr/bin/env bash
# Issue 21's Stage-II levers (docs/quality.md, "Stage-II against its own Stage-I"): each lever
# trains a Stage-II on the Stage-I of one table cell (runs/stage2-table/CELL/stage1) for STEPS
# steps (what the cell's 12 minutes bought), one thread each, two levers side by side, keeping
# a checkpoint every 1,000 steps; then scores its final G and every kept checkpoint (KID, FID
# at 256 px against the cell's held-out images) into runs/lever-s2/CELL/NAME/. A finished
# lever is skipped and a stopped one resumes: run it again to continue.
#
#   CELL=busi-malignant-dcgan SEED=0 STEPS=5380 bash docs/scripts/stage2_levers.sh NAME NAME
#
# On the Stage-I of a `usgan reproduce` folder instead (one class of its split, the same
# held-out images; CELL then only names the output folder), e.g. docs/results.md's:
#
#   CELL=busi-malignant-repro-dcgan SEED=0 STEPS=2500 CKPT=500 \
#     STAGE1=runs/results/busi/runs/default/dcgan FROM_SPLIT=runs/results/busi/split.json \
#     bash docs/scripts/stage2_levers.sh default noise
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SHARED=${SHARED:-../shared}
CELL=${CELL:-busi-malignant-dcgan}
SEED=${SEED:-0}
STEPS=${STEPS:?say how many Stage-II steps: what the 12 minutes of the cell bought, in its JSON}
THREADS=${THREADS:-1}  # per lever; 2 for one lever alone on two cores
CKPT=${CKPT:-1000}  # a checkpoint every CKPT steps, each scored
TABLE=runs/stage2-table
STAGE1=${STAGE1:-$TABLE/$CELL/stage1}
SPLIT=$TABLE/split-busi-malignant.json  # the BUSI malignant cells only
if [[ -n ${FROM_SPLIT:-} ]]; then  # the malignant class of a reproduce folder's split
  SPLIT=runs/lever-s2/$CELL/split-malignant.json
  [[ -f $SPLIT ]] || "$PY" docs/scripts/class_split.py "$FROM_SPLIT" malignant "$SPLIT"
fi

# name | usgan train options over the default recipe
lever() {
  case $1 in
    default) echo "" ;;
    no-da) echo "--stage2-diffaugment none" ;;  # the default before 2026-12-04
    da) echo "--stage2-diffaugment translation,cutout" ;;  # the default since
    ft-lr-0.3) echo "--stage2-finetune-lr 0.3" ;;
    ft-lr-0.1) echo "--stage2-finetune-lr 0.1" ;;
    pretrain-0.75) echo "--stage2-pretrain 0.75" ;;
    pairs-only) echo "--stage2-pretrain 1" ;;
    recon-1) echo "--stage2-recon 1" ;;
    ema) echo "--stage2-ema" ;;
    noise) echo "--stage2-config noise=true" ;;
    patch-16) echo "--stage2-config d_patch=16" ;;  # PatchGAN D: 16x16 scores of 78-px patches
    dec-32) echo "--stage2-config dec_min_width=32" ;;  # wider texture blocks at 128, 256 px
    lr-0.5) echo "--lr 1e-4" ;;  # Stage-II's lr halved (the Stage-I is reused, not trained)
    *) echo "unknown lever $1" >&2; exit 2 ;;
  esac
}

run_one() {
  local name=$1 out=runs/lever-s2/$CELL/$1
  if [[ -f $out/progress.json ]] && grep -q '"finished": true' "$out/progress.json"; then
    :
  elif [[ -f $out/config.json ]]; then
    .venv/bin/usgan train --resume "$out" --quiet --threads "$THREADS"
  else
    # shellcheck disable=SC2046
    .venv/bin/usgan train --data "$SHARED/data/busi-256" --classes malignant --split "$SPLIT" \
      --seed "$SEED" --threads "$THREADS" --quiet --log-every 500 --stage1-from "$STAGE1" \
      --stage2 on --stage2-max-steps "$STEPS" --checkpoint-every "$CKPT" --keep-checkpoints 1000 \
      --keep-all-checkpoints $(lever "$name") --out "$out"
  fi
  [[ -f $out/stage2-curve.json ]] || "$PY" docs/scripts/stage2_table.py --score "$out" --curve "$out" \
    --split "$SPLIT" --class malignant > "$out/score.txt"
}

for name in "$@"; do lever "$name" > /dev/null; done
pids=()
for name in "$@"; do
  run_one "$name" > "runs/lever-s2-$CELL-$name.log" 2>&1 &
  pids+=($!)
  if (( ${#pids[@]} == 2 )); then wait "${pids[@]}"; pids=(); fi
done
wait
