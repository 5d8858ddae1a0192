"""Every command in README.md and docs/*.md runs as written: a dry run of each.

The commands are taken from the fenced code blocks (backslash continuations joined, comments
dropped). A ``usgan`` command is parsed by the real CLI down to its subcommand, with every
option converted by its type and checked by its callbacks, without running it; a
``docs/scripts`` or ``tests`` script must exist and know each option given to it; a ``make``
target must exist in the Makefile; a ``../shared`` path must exist where ``../shared`` does.
Templates keep to one spelling: ``[...]`` marks what is optional (dropped here), ``a|b`` a
choice (the first is parsed), UPPER-CASE words, ``...`` and ``/path/to/`` stand for values,
and a template's indented next line starting with ``--`` or ``[`` continues it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_START = re.compile(r"^(\$ )?(\.venv/bin/)?(usgan|python|make|bash) ")


@dataclass(frozen=True)
class Command:
    """One command line of a page, with where it was found."""

    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def commands(page: Path) -> list[Command]:
    """The command lines in the fenced code blocks of ``page``."""
    found: list[Command] = []
    fenced, pending, start, last = False, "", 0, 0
    for number, raw in enumerate(page.read_text().splitlines(), 1):
        if raw.lstrip().startswith("```"):
            fenced, pending = not fenced, ""
            continue
        if not fenced:
            continue
        pending, start = (f"{pending} {raw.strip()}", start) if pending else (raw.strip(), number)
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if _START.match(pending):
            found.append(Command(page.relative_to(ROOT).as_posix(), start, pending))
        elif found and last == number - 1 and raw[:1].isspace() and pending[:1] in "-[":
            found[-1] = replace(found[-1], text=f"{found[-1].text} {pending}")  # a template's
        else:                                                                   # next line
            last = 0
            pending = ""
            continue
        last, pending = number, ""
    return found


ALL = [command for page in PAGES for command in commands(page)]


def words(text: str) -> list[str]:
    """Shell words of a template: optional ``[...]`` parts, comments and ``&`` dropped."""
    text = re.sub(r"\[[^\]]*\]", " ", text.removeprefix("$ "))
    out = shlex.split(text, comments=True)
    while out and out[-1] == "&":
        out.pop()
    return [w.split("|")[0] if "|" in w and not w.startswith("-") else w for w in out]


def _usgan_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``usgan`` / ``python -m usgan``, or None for other programs."""
    if Path(argv[0]).name == "usgan":
        return argv[1:]
    if Path(argv[0]).name == "python" and argv[1:3] == ["-m", "usgan"]:
        return argv[3:]
    return None


def dry_run(args: list[str]) -> set[str]:
    """Parse ``usgan ARGS`` down to the leaf command without invoking anything; its options."""
    from usgan.cli.main import _add_plugin_commands, cli

    _add_plugin_commands()
    command: click.Command = cli
    ctx = cli.make_context("usgan", list(args))
    known = {"--help", "-h"}
    while True:
        known |= {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        rest = [*ctx._protected_args, *ctx.args]
        if not isinstance(command, click.Group) or not rest:
            return known
        _, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None
        command, ctx = sub, sub.make_context(sub.name or "", rest, parent=ctx)


def _values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == option]


def _placeholder(word: str) -> bool:
    return (bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", word)) or "..." in word
            or word.startswith("/path/to/"))


def check_names(argv: list[str]) -> None:
    """Network names must be registered; data must be built in or under ``../shared``."""
    from usgan.core.plugin_manager import get_registry

    registry = get_registry()
    for option, known in (("--stage1", registry.names("stage1")),
                          ("--stage2", ["on", "off", *registry.names("stage2")])):
        for name in _values(argv, option):
            assert _placeholder(name) or name in known, f"{option} {name}: not one of {known}"
    for option in ("--data", "--real"):
        for spec in _values(argv, option):
            assert _placeholder(spec) or spec.startswith(("phantom", "../shared/")), (
                f"{option} {spec}: a folder that exists only where it was run; name it by "
                "its ../shared path or the built-in phantom")


def _script_options(script: Path) -> set[str]:
    return set(re.findall(r"""["'](--[a-z0-9-]+)["']""", script.read_text()))


def check(command: Command) -> None:
    """Raise AssertionError (or click's error) when ``command`` cannot run as written."""
    argv = words(command.text)
    for word in argv:
        if word.startswith("../shared/") and SHARED.is_dir():
            assert (ROOT / word).exists(), f"{word} does not exist"
    usgan_args = _usgan_args(argv)
    if usgan_args is not None:
        known = dry_run(usgan_args)
        optional = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", command.text)) - known
        assert not optional, f"unknown options {sorted(optional)}"
        check_names(usgan_args)
    elif argv[0] == "make":
        targets = re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M)
        assert all(t in targets for t in argv[1:] if "=" not in t), f"make targets: {targets}"
    elif Path(argv[0]).name == "python" and argv[1] != "-c":
        script = ROOT / argv[1]
        assert script.is_file(), f"no script {argv[1]}"
        unknown = {w.split("=")[0] for w in argv[2:] if w.startswith("--")}
        unknown -= _script_options(script)
        assert not unknown, f"{argv[1]} has no options {sorted(unknown)}"
    elif argv[0] == "bash":
        assert (ROOT / argv[1]).is_file(), f"no script {argv[1]}"


def test_the_pages_have_commands() -> None:
    assert len(ALL) > 50
    assert any("usgan train" in c.text for c in ALL if c.page == "README.md")


@pytest.mark.parametrize("command", ALL, ids=[f"{c.page}:{c.line}" for c in ALL])
def test_a_documented_command_runs_as_written(command: Command) -> None:
    try:
        check(command)
    except (click.ClickException, AssertionError) as err:
        message = err.format_message() if isinstance(err, click.ClickException) else err
        pytest.fail(f"{command}\n  {message}")


@pytest.mark.parametrize("text", [
    "usgan train --stage1 dcgn",
    "usgan train --stage2 refinr",
    "usgan train --data busi-malignant --classes malignant",
    "usgan train --no-such-option",
    "usgan bench quality --class malignant",  # --data is required
    "usgan zoo frobnicate",
    "usgan eval --real SPEC --fake SOURCE [--no-such-option]",
    "make no-such-target",
    ".venv/bin/python docs/scripts/stage2_table.py --no-such-option",
])
def test_the_dry_run_catches_a_broken_command(text: str) -> None:
    with pytest.raises((click.ClickException, AssertionError)):
        check(Command("example", 1, text))


def test_seeds_table_puts_folders_side_by_side(tmp_path: Path) -> None:
    """docs/scripts/seeds_table.py: one column per folder, the mean, the pairs per seed."""
    path = ROOT / "docs/scripts/seeds_table.py"
    spec = importlib.util.spec_from_file_location("seeds_table", path)
    assert spec and spec.loader
    seeds_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds_table)

    def folder(seed: int, s1: float, s2: float) -> Path:
        out = tmp_path / f"seed{seed}"
        out.mkdir()
        table1 = {"default/dcgan": {"a": {"kid": s1}}, "default/dcgan-stage2": {"a": {"kid": s2}}}
        pair = {"config": "default/dcgan-stage2", "class": "a", "stage1_kid": s1,
                "stage2_kid": s2}
        doc = {"settings": {"seed": seed}, "configs": list(table1), "table1": table1,
               "floor": {"training images (the floor)": {"a": {"kid": 0.0}}},
               "claims": {"stage2_lowers_fid": [pair]}}
        (out / "summary.json").write_text(json.dumps(doc))
        return out

    lines = seeds_table.markdown([folder(0, 0.30, 0.20), folder(1, 0.25, 0.27)])
    assert lines[0] == "| row | class | seed 0 | seed 1 | mean |"
    assert "| `default/dcgan-stage2` | a | 20.00 | 27.00 | 23.50 |" in lines
    assert "| `training images (the floor)` | a | 0.00 | 0.00 | 0.00 |" in lines
    assert lines[-1] == "Stage-II below its Stage-I in KID: seed 0: 1 of 1, seed 1: 0 of 1."


def test_classifier_levers_reads_levers_and_tabulates() -> None:
    """docs/scripts/classifier_levers.py: NAME:KEY=VALUE levers over the fast preset, an
    unknown key refused, one table row per lever with mean ± sample std."""
    path = ROOT / "docs/scripts/classifier_levers.py"
    spec = importlib.util.spec_from_file_location("classifier_levers", path)
    assert spec and spec.loader
    levers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(levers)
    assert levers.parse_lever("base:") == ("base", {})
    assert levers.parse_lever("b:size=128,lr=3e-4,balance=1") == \
        ("b", {"size": 128, "lr": 3e-4, "balance": 1})
    with pytest.raises(SystemExit, match="unknown lever key 'nope'"):
        levers.parse_lever("x:nope=1")
    rows = {"base": {"settings": {}, "seconds": 120.0,
                     "repeats": [{"accuracy": 50.0, "f1": 40.0}, {"accuracy": 60.0, "f1": 50.0},
                                 {"accuracy": 55.0, "f1": 45.0}]},
            "b": {"settings": {"balance": 1}, "seconds": 60.0,
                  "repeats": [{"accuracy": 60.0, "f1": 60.0}, {"accuracy": 71.0, "f1": 70.0}]}}
    lines = levers.table(rows).splitlines()
    assert lines[-2] == "| base | fast, 100 steps | 55.0 ± 5.0 | 45.0 | — | 2.0 |"
    assert lines[-1] == "| b | balance=1 | 65.5 ± 7.8 | 65.0 | 0.030 | 1.0 |"
