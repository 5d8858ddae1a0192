"""``usgan bench``: time each workload in the plain reference form and in usgan's form;
``usgan bench quality``: the images each form trains in a wall-clock budget."""

from __future__ import annotations

import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from usgan.core.runtime import COMPILE_MODES, PRECISIONS


def _command() -> str:
    """The command line as typed, from ``bench`` on (``usgan bench ...``)."""
    argv = sys.argv[1:]
    tail = argv[argv.index("bench"):] if "bench" in argv else ["bench"]
    return "usgan " + shlex.join(tail)


@click.group("bench", invoke_without_command=True)
@click.option("--quick", is_flag=True,
              help="A short run (a few steps at batch 4, FID on 20 vs 20) that checks the "
                   "suite works; its numbers are not worth quoting.")
@click.option("--only", "only", multiple=True, metavar="KEYS",
              help="Workloads to run, comma-separated or repeated: stage1, stage2, classes, "
                   "sampling, metrics, or one row such as stage1:dcgan-sn-sa (default: all).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write the result as JSON.")
@click.option("--markdown", "markdown_out", type=click.Path(path_type=Path), default=None,
              help="Write the generated section of this Markdown page (docs/benchmarks.md).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True,
              type=click.Choice(["auto", *PRECISIONS]), help="usgan's form's precision.")
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
@click.option("--compile", "compile_mode", type=click.Choice(COMPILE_MODES), default=None,
              help="usgan's training forms with G and D compiled in this torch.compile mode, "
                   "as `usgan train --compile --compile-mode MODE` trains (the warm-up steps "
                   "wait for the compiler; the classes row is skipped).")
@click.pass_context
def bench_cmd(ctx: click.Context, quick: bool, only: tuple[str, ...], json_out: Path | None,
              markdown_out: Path | None, device: str, precision: str, threads: int | None,
              steps: int | None, warmup: int | None, inception_weights: str | None,
              profile: bool, batch: int | None, compile_mode: str | None) -> None:
    """Benchmark training steps, sampling and metrics against a plain fp32 reference.

    Not a test: run it on a quiet machine. The speed-up is reference time / usgan time.
    `usgan bench quality` measures what each form trains in a time budget instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from usgan.benchmarks.report import print_profiles, print_table, write_markdown, write_result
    from usgan.benchmarks.suite import Settings, parse_only, run

    settings = Settings(quick=quick, only=parse_only(only), device=device,
                        precision=precision, threads=threads, steps=steps, warmup=warmup,
                        inception_weights=inception_weights, profile=profile, batch=batch,
                        compile=compile_mode)
    err = Console(stderr=True, soft_wrap=True)
    result = run(settings, _command(), lambda msg: err.print(f"[dim]{msg}[/dim]"))
    print_table(result)
    print_profiles(result)
    if json_out is not None:
        click.echo(f"wrote {write_result(json_out, result)}")
    if markdown_out is not None:
        click.echo(f"wrote {write_markdown(markdown_out, result)}")


def _default(name: str) -> Any:
    """The default of `QualitySettings` field ``name`` (the one source of the CLI's)."""
    from usgan.benchmarks.quality import QualitySettings

    return next(f.default for f in fields(QualitySettings) if f.name == name)


def _items(text: str | None, kind: type, what: str) -> tuple[Any, ...] | None:
    """``a,b,c`` as a tuple of ``kind``; None when not given."""
    if text is None:
        return None
    try:
        return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of {kind.__name__}",
                                 param_hint=what) from None


@bench_cmd.command("quality")
@click.option("--data", required=True, metavar="SPEC", help="The data (docs/data.md).")
@click.option("--class", "cls", required=True, help="The class to train and score.")
@click.option("--bins", default=None, help="Grade bins for graded folders (docs/data.md).")
@click.option("--minutes", type=float, default=_default("minutes"), show_default=True,
              help="Wall-clock budget of each form.")
@click.option("--nets", default=",".join(_default("nets")), show_default=True,
              help="usgan's Stage-I networks, comma-separated (empty: none).")
@click.option("--plain/--no-plain", default=_default("plain"), show_default=True,
              help="Also train the plain pytorch/examples DCGAN.")
@click.option("--seeds", default=",".join(map(str, _default("seeds"))), show_default=True,
              help="Seeds, comma-separated: each form trains once per seed.")
@click.option("--curve", default=",".join(f"{m:g}" for m in _default("curve")),
              show_default=True, help="Minutes also scored before the end (empty: none).")
@click.option("--samples", type=int, default=_default("samples"), show_default=True,
              help="Generated images scored per point.")
@click.option("--held-out", type=float, default=_default("held_out"), show_default=True,
              help="Share of the class held out for scoring (subject-level).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Runs, split and quality.json (default runs/bench-quality/DATA-CLASS); "
                   "run again to continue a stopped bench.")
@click.option("--inception-weights", default=None, metavar="PATH",
              help="Inception weights (else $USGAN_INCEPTION_WEIGHTS, else ../shared/weights/).")
@click.option("--threads", type=int, default=None, help="CPU threads (torch's default).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A training option over the default recipe for usgan's forms (a lever), "
                   "e.g. diffaugment_p=0.5 or stage1_config.upsample=bilinear; repeatable.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the result as JSON here.")
@click.option("--markdown", "markdown_out", type=click.Path(path_type=Path), default=None,
              help="Write this data set's section of this page (docs/benchmarks.md).")
def quality_cmd(data: str, cls: str, bins: str | None, minutes: float, nets: str, plain: bool,
                seeds: str, curve: str, samples: int, held_out: float, out: Path | None,
                inception_weights: str | None, threads: int | None, sets: tuple[str, ...],
                json_out: Path | None, markdown_out: Path | None) -> None:
    """Time to quality: usgan's default Stage-I of each network and the plain DCGAN, each
    trained for --minutes on one class, scored (KID, FID) on held-out images of it.

    Not a test: run it on a quiet machine (each form's budget is wall-clock time).
    """
    from usgan.benchmarks.quality import QualitySettings, data_label, parse_sets, run
    from usgan.benchmarks.quality_report import print_table, write_markdown
    from usgan.core.io import write_json

    if out is None:
        out = Path("runs") / "bench-quality" / f"{data_label(data).replace(':', '-')}-{cls}"
    settings = QualitySettings(
        data=data, cls=cls, out=out, minutes=minutes, nets=_items(nets, str, "--nets") or (),
        plain=plain, seeds=_items(seeds, int, "--seeds") or (0,),
        curve=_items(curve, float, "--curve") or (), samples=samples, held_out=held_out,
        bins=bins, inception_weights=inception_weights, threads=threads,
        options=parse_sets(sets))
    err = Console(stderr=True, soft_wrap=True)
    result = run(settings, _command(), lambda msg: err.print(f"[dim]{msg}[/dim]"))
    print_table(result)
    click.echo(f"results: {out / 'quality.json'}")
    if json_out is not None:
        click.echo(f"wrote {write_json(json_out, result)}")
    if markdown_out is not None:
        click.echo(f"wrote {write_markdown(markdown_out, result)}")
