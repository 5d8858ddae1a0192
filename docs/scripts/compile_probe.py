"""Does ``torch.compile`` pay off for usgan's training step? One process, one Stage-I network
pair, the trainer's own `GANStep` (default recipe), eager against compiled G and D.

    python docs/scripts/compile_probe.py --device cuda --name dcgan --batch 16

Prints one line per mode: compile time (the first steps) and the median step time after it.
``reduce-overhead`` (CUDA graphs on a GPU) marks each step's beginning for CUDA graph trees.
A probe for docs/benchmarks.md, not part of ``usgan bench``: compilation takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from usgan.benchmarks.measure import timed
from usgan.core.factory import create_discriminator, create_generator
from usgan.core.noise import noise_for
from usgan.core.runtime import Runtime
from usgan.core.stacking import forward_stack
from usgan.core.train.options import TrainOptions
from usgan.core.train.step import GANStep, make_optimizers


def step_for(name: str, batch: int, rt: Runtime, mode: str | None,  # type: ignore[no-untyped-def]
             fmt: torch.memory_format):
    """A callable running one Stage-I training step; G and D compiled with ``mode`` (None:
    eager), in memory format ``fmt``."""
    torch.manual_seed(0)
    g = create_generator(name).to(rt.device, memory_format=fmt).train()
    d = create_discriminator(name).to(rt.device, memory_format=fmt).train()
    opts = TrainOptions(stage1=name)
    opt_g, opt_d = make_optimizers(g, d, opts.lr, opts.betas, opts.lr_d)
    gc, dc = (g, d) if mode is None else (torch.compile(g, mode=mode), torch.compile(d, mode=mode))
    step = GANStep.for_options(opts, lambda z: forward_stack([gc], z)[-1], dc, opt_g, opt_d,
                               aug=torch.Generator().manual_seed(1), autocast=rt.autocast)
    real = (torch.rand(batch, 1, g.out_size, g.out_size) * 2 - 1).to(rt.device)
    real = real.contiguous(memory_format=fmt)
    gen = torch.Generator().manual_seed(2)
    if mode != "reduce-overhead":
        return lambda: step(real, noise_for([g], batch, gen, rt.device))

    def graphed() -> object:
        # CUDA graph trees otherwise take a pass that starts with no backward pending for a
        # new step and overwrite the outputs of the step's earlier passes (D runs two or three
        # times a step): one step, one generation.
        torch.compiler.cudagraph_mark_step_begin()
        return step(real, noise_for([g], batch, gen, rt.device))
    return graphed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--name", default="dcgan")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--modes", default="eager,default,reduce-overhead")
    ap.add_argument("--nchw", action="store_true", help="Contiguous NCHW instead of the "
                    "runtime's channels_last.")
    args = ap.parse_args()
    rt = Runtime.create(args.device, args.precision)
    print(f"{args.name} batch {args.batch} on {rt.device}, {rt.precision}, "
          f"{'NCHW' if args.nchw else 'channels_last'}, torch {torch.__version__}")
    for mode in args.modes.split(","):
        fmt = torch.contiguous_format if args.nchw else rt.memory_format
        fn = step_for(args.name, args.batch, rt, None if mode == "eager" else mode, fmt)
        start = time.perf_counter()
        for _ in range(3):
            timed(fn, rt.device)
        first = time.perf_counter() - start
        times = [timed(fn, rt.device) for _ in range(args.steps)]
        print(f"{mode:>16}: first 3 steps {first:7.1f} s, then median "
              f"{1e3 * statistics.median(times):7.2f} ms/step (min {1e3 * min(times):.2f})",
              flush=True)


if __name__ == "__main__":
    main()
