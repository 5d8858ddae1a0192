"""``usgan reproduce``: train, evaluate, audit, classify and publish the configurations of the
paper's Table 1 on one dataset, then write its tables (docs/results.md)."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

import click

from usgan.core.errors import ConfigError


@click.command("reproduce")
@click.option("--data", required=True, help="Data spec to train on (docs/data.md).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder of this reproduction (made, or continued when it is there).")
@click.option("--name", default=None,
              help="Short dataset name for repos and the doc (default: the data's folder name).")
@click.option("--classes", default=None,
              help="Classes to use, in this order, e.g. benign,malignant (default: all).")
@click.option("--bins", default=None, help="Grade bins for graded folders, e.g. 1.0.")
@click.option("--eval-real", default=None, metavar="SPEC",
              help="Separate real images (never trained on) for FID/KID and the classifier's "
                   "tests; without it a held-out split of --data is the test set.")
@click.option("--preset", type=click.Choice(["smoke", "cpu", "paper"]), default="cpu",
              show_default=True, help="The schedule (docs/results.md).")
@click.option("--only", default=None, metavar="CONFIGS",
              help="Comma-separated configurations: paper/dcgan-stage2, an entry (both "
                   "recipes) or a recipe (default: the preset's; all twelve but for cpu, "
                   "which runs the default recipe's six).")
@click.option("--test-per-class", type=int, default=None,
              help="Held-out test images per class (default: min(70, 20% of the smallest)).")
@click.option("--eval-n", type=int, default=None,
              help="Samples per class for FID/KID (default: the preset's; the paper: 400).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Steps run at once (CPU threads are shared out among them).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--inception-weights", default=None, metavar="PATH",
              envvar="USGAN_INCEPTION_WEIGHTS", help="Offline Inception weights for FID/KID.")
@click.option("--push-org", default=None,
              help="Publish every finished configuration to ORG/<name>-<recipe>-<entry>.")
@click.option("--endpoint", default=None, metavar="URL", help="Hub endpoint for --push-org.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Also write this dataset's section of a Markdown page (docs/results.md).")
@click.option("--batch-size", type=int, default=None,
              help="GAN batch size (default: each recipe's, docs/training.md).")
@click.option("--stage1-config", default=None, help="Stage-I config overrides, k=v,k=v.")
@click.option("--stage2-config", default=None, help="Stage-II config overrides, k=v,k=v.")
@click.option("--backbone", default="efficientnet_b0", show_default=True,
              help="The classifier (a timm model).")
@click.option("--phase", "phases", default=None, metavar="KINDS",
              help="Run only these kinds of step, e.g. split,train on a GPU machine without "
                   "the Inception weights (of split, train, eval, classify, push; default all).")
@click.option("--dry-run", is_flag=True, help="Print the steps left and their commands; run none.")
@click.option("--report-only", is_flag=True,
              help="Write the report from what is done so far; run nothing (also while "
                   "another usgan reproduce works in OUT).")
def reproduce_cmd(data: str, out: Path, name: str | None, classes: str | None,
                  bins: str | None, eval_real: str | None, preset: str, only: str | None,
                  test_per_class: int | None, eval_n: int | None, jobs: int, seed: int,
                  inception_weights: str | None, push_org: str | None, endpoint: str | None,
                  report: Path | None, batch_size: int | None, stage1_config: str | None,
                  stage2_config: str | None, backbone: str, phases: str | None,
                  dry_run: bool, report_only: bool) -> None:
    """Reproduce Tables 1 and 2 of Che et al. on DATA; running it again continues it."""
    from usgan.core.data import load_index
    from usgan.reproduce import document
    from usgan.reproduce.plan import PRESETS, Layout, Settings, configs, plan, select_phases
    from usgan.reproduce.runner import run_all

    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    wanted = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    index = load_index(data, classes=wanted, bins=bins)
    if eval_real is None and test_per_class is None:  # as `usgan experiment classify`
        counts = Counter(it.label for it in index.items)
        test_per_class = max(1, min(70, int(0.2 * min(counts[c] for c in index.class_names))))
    settings = Settings(data=data, name=name or _name(data), preset=preset,
                        classes=wanted, bins=bins, eval_real=eval_real,
                        test_per_class=None if eval_real else test_per_class, seed=seed,
                        batch_size=batch_size,
                        stage1_config=stage1_config, stage2_config=stage2_config,
                        backbone=backbone, eval_n=eval_n)
    chosen = configs([w.strip() for w in only.split(",") if w.strip()] if only
                     else PRESETS[preset].only)
    lay = Layout(out)
    steps = plan(settings, PRESETS[preset], chosen, lay, push_org, endpoint, inception_weights)
    todo = select_phases(steps, phases)
    if not inception_weights and any(st.id.startswith("eval ") for st in todo):
        from usgan.core.evaluation import WEIGHTS_ENV

        click.echo(f"reproduce: no --inception-weights (or ${WEIGHTS_ENV}): torch-fidelity "
                   "will download them at the first evaluation", err=True)
    if dry_run:
        for st in todo:
            if not st.done():
                click.echo(f"{st.id}: usgan {shlex.join(st.argv())}")
        return
    out.mkdir(parents=True, exist_ok=True)
    settings.check_against(out, PRESETS[preset])
    if not report_only:
        with lay.lock():
            run_all(steps, lay, jobs, lambda m: click.echo(m, err=True), todo)
    command = _command(settings, out, only, jobs, push_org, endpoint, report, inception_weights)
    path = document.write(settings, PRESETS[preset], lay, chosen, steps, index.class_names,
                          command, report)
    click.echo(f"wrote {path}" + (f" and the {settings.name} section of {report}" if report
                                  else ""))


def _name(data: str) -> str:
    return Path(data.split(":")[0]).name or "data"


def _command(s: object, out: Path, only: str | None, jobs: int, push_org: str | None,
             endpoint: str | None, report: Path | None, weights: str | None) -> str:
    """The command line that regenerates this reproduction."""
    from usgan.reproduce.plan import Settings

    assert isinstance(s, Settings)
    args = ["usgan", "reproduce", "--data", s.data, "--name", s.name, "--preset", s.preset]
    for flag, value in (("--classes", ",".join(s.classes or [])), ("--bins", s.bins),
                        ("--eval-real", s.eval_real), ("--only", only),
                        ("--stage1-config", s.stage1_config),
                        ("--stage2-config", s.stage2_config),
                        ("--inception-weights", weights), ("--push-org", push_org),
                        ("--endpoint", endpoint)):
        if value:
            args += [flag, str(value)]
    if s.batch_size:
        args += ["--batch-size", str(s.batch_size)]
    if s.backbone != "efficientnet_b0":
        args += ["--backbone", s.backbone]
    if s.eval_n:
        args += ["--eval-n", str(s.eval_n)]
    if s.seed:
        args += ["--seed", str(s.seed)]
    args += ["--jobs", str(jobs), "--out", str(out)]
    args += ["--report", str(report)] if report else []
    return shlex.join(args)
