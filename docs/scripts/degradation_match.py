"""Which degradation of the real images looks most like a Stage-I's output? (docs/quality.md)

Stage-II's real pairs (`usgan.core.train.pairs.Degradation`) should feed the refiner inputs
like the ones it will refine. For a finished Stage-I run this scores, at the Stage-I size,
400 of its samples against the run's own training images degraded by each candidate (blur
and noise ranges), by KID and FID in Inception features; the closest candidate wins.

    .venv/bin/python docs/scripts/degradation_match.py RUN [--class C] [--json OUT.json]
        [--blurs 0,0.75,1.5] [--noises 0,0.05,0.1]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO.parent / "shared" / "weights" / "inception-fid-2015-12-05-features-only.pth"
BLURS, NOISES = (0.0, 0.75, 1.5), (0.0, 0.05, 0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--class", dest="cls", default=None)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--blurs", default=",".join(map(str, BLURS)),
                    help="Comma-separated blur limits (Stage-I pixels).")
    ap.add_argument("--noises", default=",".join(map(str, NOISES)),
                    help="Comma-separated noise limits ([-1, 1] units).")
    args = ap.parse_args()

    import usgan as api
    from usgan.core.evaluation import Extractor, TensorImages, from_features
    from usgan.core.train.options import TrainOptions
    from usgan.core.train.pairs import Degradation
    from usgan.core.train.setup import load_data

    config = json.loads((args.run / "config.json").read_text())
    opts = TrainOptions.from_json(config["options"])
    cls = args.cls or config["classes"][0]
    model = api.load(args.run)
    fake = model.sample(args.n, cls=cls, seed=0, stage=1)
    size = fake.shape[-1]
    real = load_data(opts).of_class(cls).images.float().div(127.5).sub(1)  # the run's own
    factor = real.shape[-1] // size
    extractor = Extractor.create(["fid", "kid"], weights=WEIGHTS)
    f_fake = extractor.features(TensorImages(fake))
    rows = []
    blurs, noises = (tuple(map(float, v.split(","))) for v in (args.blurs, args.noises))
    for blur, noise in itertools.product(blurs, noises):
        low = Degradation(factor, blur, noise)(real, torch.Generator().manual_seed(0))
        as_uint8 = low.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        got = from_features(extractor, f_fake, extractor.features(TensorImages(as_uint8)),
                            ["fid", "kid"])
        rows.append({"blur": blur, "noise": noise, "kid": got["kid"].value,
                     "fid": got["fid"].value})
        print(f"blur <= {blur:<4} noise <= {noise:<4} KID {got['kid'].value:.4f} "
              f"FID {got['fid'].value:.1f}", flush=True)
    best = min(rows, key=lambda r: r["kid"])
    print(f"closest to {args.run}'s Stage-I ({cls}, {size} px): blur <= {best['blur']}, "
          f"noise <= {best['noise']} (KID {best['kid']:.4f})")
    if args.json:
        from usgan.core.io import write_json

        write_json(args.json, {"run": str(args.run), "class": cls, "size": size,
                               "n_fake": args.n, "n_real": len(real), "rows": rows,
                               "best": best})


if __name__ == "__main__":
    main()
