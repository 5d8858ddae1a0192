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

# Levers named here to skip (space-separated), e.g. on BUSI, where all of them were measured
# on 2026-12-04 to 12-06 over the recipe of their day (docs/benchmarks.md, "Levers on BUSI
# malignant"; batch 16 and attention at 32x32 as the default bench's own rows then), which
# leaves only the default bench:
#   SKIP="p1 no-ema resize-conv ada lecam width32 batch16 lr2x attn32 sn-batch8 sn-ttur \
#     sn-hinge sn-d-only sn-betas sn-diffaug sn-gan-form sa-dcgan-recipe" \
#     bash docs/scripts/stage1_levers.sh busi
SKIP=${SKIP:-}

# name | network | --set options (each lever alone, over the default recipe: since
# 2026-12-04, DiffAugment translation,cutout on half the images and an EMA of Stage-I's G
# with warm-up; since 2026-12-05 self-attention at 16x16 in dcgan-sn-sa and batch 8 in
# dcgan's Stage-I; since 2026-12-06 BatchNorm in dcgan-sn's D and dcgan's recipe for it, so
# the sn-* levers measured before then over its former form now need sn-gan-form's --set too)
LEVERS=(
  "p1|dcgan|--set diffaugment_p=1"  # DiffAugment on every image (the default before 2026-12-04)
  "no-ema|dcgan|--set ema=false"
  "resize-conv|dcgan|--set stage1_config.upsample=bilinear"
  "ada|dcgan|--set diffaugment_p=0 --set ada_target=0.6"
  "lecam|dcgan|--set lecam=0.3"
  "width32|dcgan|--set stage1_config.g_width=32 --set stage1_config.d_width=32"
  "batch16|dcgan|--set batch_size=16"  # the paper's batch (dcgan's default until 2026-12-05)
  "lr2x|dcgan|--set lr=4e-4"  # Adam at twice the paper's learning rate, G and D
  # self-attention at 32x32 (the default until 2026-12-05, when 16x16 won on both data sets)
  "attn32|dcgan-sn-sa|--set stage1_config.attn_res=32"
  # the spectral-norm networks (batch 16, no DiffAugment): dcgan's batch 8, and D's Adam at
  # twice G's learning rate (two time-scale update rule)
  "sn-batch8|dcgan-sn,dcgan-sn-sa|--set batch_size=8"
  "sn-ttur|dcgan-sn|--set lr_d=4e-4"
  "sn-hinge|dcgan-sn|--set loss=hinge"  # the loss SN-GANs are usually trained with
  # spectral norm in D only (Miyato et al.; the paper puts it in G too), Adam's betas
  # (0, 0.9) of SN-GAN and SAGAN in place of DCGAN's (0.5, 0.999), and dcgan's DiffAugment
  # (translation,cutout on half the images) that the SN networks' recipe leaves out
  "sn-d-only|dcgan-sn|--set stage1_config.g_spectral_norm=false"
  "sn-betas|dcgan-sn|--set betas=[0,0.9]"
  "sn-diffaug|dcgan-sn|--set diffaugment=[\"translation\",\"cutout\"]"
  # the form of dcgan-sn and dcgan-sn-sa until 2026-12-06, SN-GAN's: no BatchNorm in D,
  # batch 16, no DiffAugment (BatchNorm in D with that recipe, "sn-d-bn" then, made D win
  # outright on BUSI)
  "sn-gan-form|dcgan-sn,dcgan-sn-sa|--set stage1_config.d_batchnorm=false --set batch_size=16 \
--set diffaugment=[]"
)

for set in "${@:-busi sfibai}"; do
  for data in $set; do
    # shellcheck disable=SC2046
    "$USGAN" bench quality $(data_args "$data") --minutes 8 --seeds "$SEEDS" \
      --markdown docs/benchmarks.md  # out: the default, runs/bench-quality/DATA-CLASS
    for lever in "${LEVERS[@]}"; do
      IFS='|' read -r name net sets <<< "$lever"
      [[ " $SKIP " == *" $name "* ]] && continue
      # shellcheck disable=SC2086
      "$USGAN" bench quality $(data_args "$data") --minutes 8 --seeds "$SEEDS" --nets "$net" \
        --no-plain $sets --out "runs/bench-quality/$data-$name" \
        --markdown docs/benchmarks.md
    done
  done
done
