#!/usr/bin/env bash
# Issue 22's Stage-I levers, measured by `usgan bench quality` (docs/benchmarks.md, "Levers"):
# first the default bench (all forms) per dataset, then each lever as `--set` on `dcgan` alone,
# seeds 0 and 1, at the same 8-minute budget and against the same held-out images. Every bench
# resumes where it stopped: run this again to continue. Run it alone on the machine (the
# budgets are wall-clock time): about 45 minutes per default bench and seed, 10 per lever.
#
#   bash docs/scripts/stage1_levers.sh [busi|sfibai ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
USGAN=${USGAN:-.venv/bin/usgan}
SHARED=${SHARED:-../shared}
SEEDS=${SEEDS:-0,1}

data_args() {
  case $1 in
    busi) echo "--data $SHARED/data/busi-256 --class malignant" ;;
    sfibai) echo "--data $SHARED/data/sfibai-liver-fibrosis-us/train --bins 1.0 --class ge1.0" ;;
    *) echo "unknown data set $1 (busi or sfibai)" >&2; exit 2 ;;
  esac
}

# Levers named here to skip (space-separated), e.g. on BUSI, where p1, resize-conv, ada and
# p05 were measured before the default became p = 0.5 (docs/benchmarks.md, "Levers"):
#   SKIP="p1 resize-conv ada p05" bash docs/scripts/stage1_levers.sh busi
SKIP=${SKIP:-}

# name | --set options (each lever alone, over the default recipe: DiffAugment translation,
# cutout on half the images, since 2026-12-04)
LEVERS=(
  "p1|--set diffaugment_p=1"  # the default before 2026-12-04
  "resize-conv|--set stage1_config.upsample=bilinear"
  "ada|--set diffaugment_p=0 --set ada_target=0.6"
  "lecam|--set lecam=0.3"
  "ema|--set ema=true --set ema_warmup=true"
  "width32|--set stage1_config.g_width=32 --set stage1_config.d_width=32"
  "batch8|--set batch_size=8"
)

for set in "${@:-busi sfibai}"; do
  for data in $set; do
    # shellcheck disable=SC2046
    "$USGAN" bench quality $(data_args "$data") --minutes 8 --seeds "$SEEDS" \
      --markdown docs/benchmarks.md  # out: the default, runs/bench-quality/DATA-CLASS
    for lever in "${LEVERS[@]}"; do
      name=${lever%%|*}
      [[ " $SKIP " == *" $name "* ]] && continue
      # shellcheck disable=SC2046
      "$USGAN" bench quality $(data_args "$data") --minutes 8 --seeds "$SEEDS" --nets dcgan \
        --no-plain ${lever#*|} --out "runs/bench-quality/$data-$name" \
        --markdown docs/benchmarks.md
    done
  done
done
