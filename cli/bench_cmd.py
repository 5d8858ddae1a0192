"""``usgan bench``: time each workload in the plain reference form and in usgan's form."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from rich.console import Console


def _command() -> str:
    """The command line as typed, from ``bench`` on (``usgan bench ...``)."""
    argv = sys.argv[1:]
    tail = argv[argv.index("bench"):] if "bench" in argv else ["bench"]
    return "usgan " + shlex.join(tail)


@click.command("bench")
@click.option("--quick", is_flag=True,
              help="A short run (a few steps at batch 4, FID on 20 vs 20) that checks the "
                   "suite works; its numbers are not worth quoting.")
@click.option("--only", "only", multiple=True, metavar="KEYS",
              help="Workloads to run, comma-separated or repeated: stage1, stage2, sampling, "
                   "metrics, or one row such as stage1:dcgan-sn-sa (default: all).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write the result as JSON.")
@click.option("--markdown", "markdown_out", type=click.Path(path_type=Path), default=None,
              help="Write the generated section of this Markdown page (docs/benchmarks.md).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "bf16"]), help="usgan's form's precision.")
@click.option("--threads", type=int, default=None, help="CPU threads (torch's default).")
@click.option("--steps", type=int, default=None,
              help="Timed steps per form (default 20; 1-2 with --quick).")
@click.option("--warmup", type=int, default=None, help="Untimed steps before timing.")
@click.option("--batch", type=int, default=None,
              help="Batch of the training rows (default 16; 4 with --quick).")
@click.option("--inception-weights", default=None, metavar="PATH",
              help="Inception weights for the metrics row (else $USGAN_INCEPTION_WEIGHTS, "
                   "else ../shared/weights/; without any the row is skipped).")
@click.option("--profile", is_flag=True,
              help="After timing, profile each form (torch.profiler, 2 calls; 1 with --quick) "
                   "and show its top operators by self time.")
def bench_cmd(quick: bool, only: tuple[str, ...], json_out: Path | None,
              markdown_out: Path | None, device: str, precision: str, threads: int | None,
              steps: int | None, warmup: int | None, inception_weights: str | None,
              profile: bool, batch: int | None) -> None:
    """Benchmark training steps, sampling and metrics against a plain fp32 reference.

    Not a test: run it on a quiet machine. The speed-up is reference time / usgan time.
    """
    from usgan.benchmarks.report import print_profiles, print_table, write_markdown, write_result
    from usgan.benchmarks.suite import Settings, parse_only, run

    settings = Settings(quick=quick, only=parse_only(only), device=device,
                        precision=precision, threads=threads, steps=steps, warmup=warmup,
                        inception_weights=inception_weights, profile=profile, batch=batch)
    err = Console(stderr=True, soft_wrap=True)
    result = run(settings, _command(), lambda msg: err.print(f"[dim]{msg}[/dim]"))
    print_table(result)
    print_profiles(result)
    if json_out is not None:
        click.echo(f"wrote {write_result(json_out, result)}")
    if markdown_out is not None:
        click.echo(f"wrote {write_markdown(markdown_out, result)}")
