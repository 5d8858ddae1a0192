"""Benchmarks: phantom generation rate and one GAN training step per network and precision.

    .venv/bin/python benchmarks/bench.py [--out benchmarks/results/bench.json]

Prints a table and writes the numbers as JSON (benchmarks/results/ is not tracked).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from usgan.core.data import phantom
from usgan.core.factory import create_discriminator, create_generator
from usgan.core.interfaces import Stage2Generator
from usgan.core.noise import noise_for
from usgan.core.runtime import Runtime
from usgan.core.train.step import GANStep, make_optimizers


def bench_phantom(n: int = 64) -> float:
    phantom.simulate(8, 1.0)
    t = time.perf_counter()
    phantom.simulate(n, 1.0)
    return n / (time.perf_counter() - t)


def bench_step(name: str, precision: str, batch: int = 16, steps: int = 3) -> float:
    """Seconds per D+G step: the trainer's own `GANStep`, channels_last, after one warm-up."""
    rt = Runtime(torch.device("cpu"), precision)
    g = create_generator(name).to(memory_format=rt.memory_format)
    d = create_discriminator(name).to(memory_format=rt.memory_format)
    if isinstance(g, Stage2Generator):  # a fixed stand-in for the frozen Stage-I image
        mid = torch.rand(batch, g.in_channels, g.in_size, g.in_size) * 2 - 1
        mid = mid.contiguous(memory_format=rt.memory_format)
        generate = lambda noise: g(mid, noise[0])  # noqa: E731
    else:
        generate = lambda noise: g(noise[0])  # noqa: E731
    step = GANStep(generate, d, *make_optimizers(g, d), autocast=rt.autocast)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        real = (torch.rand(batch, 1, g.out_size, g.out_size) * 2 - 1).contiguous(
            memory_format=rt.memory_format)
        step(real, noise_for([g], batch))
        if i:
            times.append(time.perf_counter() - t)
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench.json"))
    args = parser.parse_args()
    rows = [{"what": "phantom 256x256", "value": bench_phantom(), "unit": "images/s"}]
    for name in ("dcgan", "dcgan-sn-sa", "stack"):
        for precision in ("fp32", "bf16"):
            rows.append({"what": f"{name} step, batch 16, {precision}",
                         "value": bench_step(name, precision), "unit": "s/step"})
    print(f"{'benchmark':<40} {'value':>10}  unit")
    for r in rows:
        print(f"{r['what']:<40} {r['value']:>10.3f}  {r['unit']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
