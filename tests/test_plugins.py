"""Plugin machinery: discovery through real entry points, isolation of broken plugins,
USGAN_STRICT_PLUGINS / USGAN_LOAD_PLUGINS, duplicate names, CLI commands from plugins, and
unit tests of the registry.

The fake plugins are real installed distributions: ``NAME-0.1.dist-info/`` folders with
``METADATA`` and ``entry_points.txt`` beside their modules in one directory put on PYTHONPATH,
so `importlib.metadata` finds them exactly as it finds pip-installed ones. Each subprocess
selects the fakes it wants with USGAN_LOAD_PLUGINS (each run costs a torch import).
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from usgan.core import GANSpec, PluginError, UnknownNameError
from usgan.core.errors import ConfigError, DuplicateNameError
from usgan.core.plugin_manager import build_registry, call_each, load_plugins
from usgan.core.registry import Registry, build

BUILTINS = {"dcgan", "dcgan-sn", "dcgan-sn-sa", "stack"}

# entry-point name -> (distribution name, module name, module source)
FAKES: dict[str, tuple[str, str, str]] = {
    "broken_import": ("usgan-fake-broken-import", "fake_broken_import", """
        raise ImportError("fake_broken_import needs a library that is not installed")
    """),
    "broken_hook": ("usgan-fake-broken-hook", "fake_broken_hook", """
        from usgan.core import hookimpl

        @hookimpl
        def register_stage1(register):
            raise RuntimeError("broken_hook cannot register today")
    """),
    "good": ("usgan-fake-good", "fake_good", """
        import click
        from torch import nn

        from usgan.core import GANSpec, hookimpl

        @hookimpl
        def register_stage1(register):
            register(GANSpec(name="good-gan", generator=nn.Identity,
                             discriminator=nn.Identity, defaults={"size": 64},
                             description="a fake plugin's GAN"))

        @hookimpl
        def register_commands(cli):
            @cli.command("good-hello")
            def good_hello():
                '''Say hello from the fake good plugin.'''
                click.echo("hello from good")
    """),
    "exits": ("usgan-fake-exits", "fake_exits", """
        import sys

        sys.exit(3)  # a plugin must not be able to end usgan
    """),
    "fewer": ("usgan-fake-fewer", "fake_fewer", """
        import os
        from pathlib import Path

        from usgan.core import hookimpl

        # Takes fewer arguments than the spec register_commands(cli): still called.
        @hookimpl
        def register_commands():
            Path(os.environ["FAKE_FEWER_MARKER"]).write_text("called")
    """),
    "dup": ("usgan-fake-dup", "fake_dup", """
        from torch import nn

        from usgan.core import GANSpec, hookimpl

        @hookimpl
        def register_stage1(register):
            register(GANSpec(name="dcgan", generator=nn.Identity, discriminator=nn.Identity))
    """),
}


def _write_fake_dist(root: Path, ep_name: str, dist: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source).lstrip())
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[usgan]\n{ep_name} = {module}\n")


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake-site")
    for ep_name, (dist, module, source) in FAKES.items():
        _write_fake_dist(root, ep_name, dist, module, source)
    return root


@pytest.fixture
def run(usgan_cli, fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run ``usgan ARGS`` with the fakes on PYTHONPATH and USGAN_LOAD_PLUGINS=load."""
    for var in ("USGAN_LOAD_PLUGINS", "USGAN_STRICT_PLUGINS", "USGAN_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    pythonpath = os.pathsep.join(
        p for p in (str(fake_site), os.environ.get("PYTHONPATH", "")) if p)

    def _run(*args: str, load: str, **env: str):
        return usgan_cli(*args, env={"PYTHONPATH": pythonpath, "USGAN_LOAD_PLUGINS": load,
                                     **env}, timeout=120)

    return _run


def _names(stdout: str) -> set[str]:
    return {row["name"] for row in json.loads(stdout)}


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- subprocess tests with real entry points ---------------------------------------------


def test_broken_plugins_are_isolated(run, tmp_path: Path) -> None:
    """(a) ImportError on import and (b) an exception in register_stage1: one warning line
    each, exit 0, built-ins and the good plugin still listed; (f) a hook taking fewer
    arguments than its spec is still called."""
    marker = tmp_path / "fewer-called"
    proc = run("plugins", "list", "--json", load="broken_import,broken_hook,good,fewer",
               FAKE_FEWER_MARKER=str(marker))
    assert proc.returncode == 0, proc.stderr
    warnings = _lines(proc.stderr)
    assert len(warnings) == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (imp,) = [w for w in warnings if "broken_import" in w]
    (hook,) = [w for w in warnings if "broken_hook" in w]
    assert imp.startswith("usgan: warning:") and "ImportError" in imp
    assert "usgan-fake-broken-import" in imp
    assert hook.startswith("usgan: warning:") and "register_stage1" in hook
    assert "cannot register today" in hook
    assert "fewer" not in proc.stderr
    assert _names(proc.stdout) >= BUILTINS | {"good-gan"}
    assert marker.read_text() == "called"


@pytest.mark.parametrize("which, where", [
    ("broken_import", "failed to load: ImportError"),
    ("broken_hook", "raised in register_stage1: RuntimeError"),
])
def test_strict_mode_fails_with_one_line(run, which: str, where: str) -> None:
    """(c) USGAN_STRICT_PLUGINS=1: a broken plugin is a one-line error, no traceback."""
    proc = run("plugins", "list", "--json", load=which, USGAN_STRICT_PLUGINS="1")
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = _lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("usgan: error:")
    assert f"plugin {which!r}" in lines[0] and where in lines[0]
    assert "Traceback" not in proc.stderr


def test_load_only_the_selected_plugin(run) -> None:
    """(d) USGAN_LOAD_PLUGINS=good loads that external plugin and no other one."""
    proc = run("plugins", "list", "--json", load="good")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = json.loads(proc.stdout)
    external = {r["plugin"] for r in rows if not r["builtin"]}
    assert external == {"good"}
    good = next(r for r in rows if r["name"] == "good-gan")
    assert (good["kind"], good["version"]) == ("stage1", "0.1")
    assert {r["name"] for r in rows if r["builtin"]} == BUILTINS


def test_empty_load_list_keeps_only_builtins(run) -> None:
    """(d) USGAN_LOAD_PLUGINS= (empty): no external plugin at all; built-ins remain."""
    proc = run("plugins", "list", "--json", load="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = json.loads(proc.stdout)
    assert {r["name"] for r in rows} == BUILTINS
    assert all(r["builtin"] for r in rows)


def test_duplicate_name_is_an_error_naming_both(run) -> None:
    """(e) a plugin registering 'dcgan' again: one line naming both providers."""
    proc = run("plugins", "list", "--json", load="dup")
    assert proc.returncode != 0
    lines = _lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "'dcgan'" in lines[0]
    assert "usgan-dcgan" in lines[0] and "'dup'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_name_suggests(run) -> None:
    """(g) ``usgan plugins show dcgann``: one line, the known names, and a suggestion."""
    proc = run("plugins", "show", "dcgann", load="")
    assert proc.returncode != 0
    lines = _lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "'dcgann'" in lines[0]
    assert "known: dcgan, dcgan-sn, dcgan-sn-sa, stack" in lines[0]
    assert "did you mean 'dcgan'" in lines[0]


def test_plugin_command_in_help(run) -> None:
    """(h) register_commands(cli) adds a command to ``usgan --help``; selected here by the
    distribution name instead of the entry-point name."""
    proc = run("--help", load="usgan-fake-good")
    assert proc.returncode == 0, proc.stderr
    assert "good-hello" in proc.stdout
    assert "plugins" in proc.stdout


# --- in-process unit tests of the registry -----------------------------------------------


class _Net:
    def __init__(self, **config: object) -> None:
        self.config = config


def _spec(name: str = "toy", **kw: object) -> GANSpec:
    return GANSpec(name=name, generator=_Net, discriminator=_Net,
                   defaults={"size": 64, "width": 8}, **kw)  # type: ignore[arg-type]


def _stage2_spec(name: str = "toy2") -> GANSpec:
    defaults = {"size": 64, "width": 8, "in_size": 64, "in_channels": 1, "out_channels": 1}
    return GANSpec(name=name, generator=_Net, discriminator=_Net, defaults=defaults)


def test_resolve_fills_defaults_and_overrides() -> None:
    spec = _spec()
    assert spec.resolve() == {"size": 64, "width": 8}
    assert spec.resolve({"width": 16}) == {"size": 64, "width": 16}
    assert dict(spec.defaults) == {"size": 64, "width": 8}  # not mutated


def test_resolve_unknown_key() -> None:
    with pytest.raises(UnknownNameError) as err:
        _spec().resolve({"widht": 16})
    msg = str(err.value)
    assert "'widht'" in msg and "known: size, width" in msg and "did you mean 'width'" in msg
    assert "\n" not in msg


def test_resolve_rejects_non_json_config() -> None:
    with pytest.raises(ConfigError, match="not JSON-able"):
        _spec().resolve({"width": object()})


def _registry() -> Registry:
    registry = Registry()
    registry.registrar("stage1", "p1", "1.0")(_spec("toy"))
    registry.registrar("stage2", "p2", "2.0")(_stage2_spec("toy2"))
    return registry


def test_stage2_contract_checked_at_registration() -> None:
    """A Stage-II whose config cannot take what the trainer sets is refused, naming the plugin."""
    with pytest.raises(PluginError) as err:
        Registry().registrar("stage2", "thirdparty", "0.1")(_spec("bad2"))
    msg = str(err.value)
    assert "'thirdparty'" in msg and "'bad2'" in msg
    assert "in_size, in_channels, out_channels" in msg and "\n" not in msg


def test_registry_fills_kind_plugin_version() -> None:
    registry = _registry()
    spec = registry.get("toy")
    assert (spec.kind, spec.plugin, spec.version) == ("stage1", "p1", "1.0")
    assert registry.names() == ["toy", "toy2"]
    assert registry.names("stage2") == ["toy2"]
    assert len(registry) == 2 and "toy" in registry
    assert [s.name for s in registry] == ["toy", "toy2"]


def test_registry_get_kind_mismatch() -> None:
    registry = _registry()
    with pytest.raises(UnknownNameError) as err:
        registry.get("toy", "stage2")
    assert "Stage-II model 'toy'" in str(err.value)
    assert "known: toy2" in str(err.value)
    assert registry.get("toy", "stage1").name == "toy"


def test_registry_duplicate_names_both_plugins() -> None:
    registry = _registry()
    with pytest.raises(DuplicateNameError, match="'p1' and by plugin 'p3'"):
        registry.registrar("stage2", "p3", "0")(_stage2_spec("toy"))


def test_registrar_rejects_non_specs() -> None:
    with pytest.raises(PluginError, match="expected a GANSpec"):
        Registry().registrar("stage1", "p", "0")({"name": "toy"})  # type: ignore[arg-type]


def test_build_tags_the_module() -> None:
    module = build(_registry(), "toy", "discriminator", {"width": 4})
    assert module.config == {"size": 64, "width": 4}
    assert module.usgan_arch == {
        "name": "toy", "kind": "stage1", "role": "discriminator",
        "config": {"size": 64, "width": 4},
    }


def test_in_process_plugins_and_fewer_argument_hooks(monkeypatch) -> None:
    """In-process plugins go through the same hooks; an impl may take fewer arguments."""
    from usgan.core import hookimpl

    calls: list[str] = []

    class Toy:
        @hookimpl
        def register_stage1(self, register):  # type: ignore[no-untyped-def]
            register(_spec("toy-inproc"))

        @hookimpl
        def register_commands(self):  # type: ignore[no-untyped-def]
            calls.append("commands")

    monkeypatch.setenv("USGAN_LOAD_PLUGINS", "")
    monkeypatch.delenv("USGAN_STRICT_PLUGINS", raising=False)
    plugins = load_plugins(extra=[("toy", Toy())])
    registry = build_registry(plugins)
    assert set(registry.names()) == BUILTINS | {"toy-inproc"}
    assert registry.get("toy-inproc").plugin == "toy"
    call_each(plugins, "register_commands", lambda name, info: {"cli": None})
    assert calls == ["commands"]
    assert plugins.problems == []


# --- house rules: allowlist names, sys.exit at import, `usgan plugins check` ---------------


def test_allowlist_name_not_installed(run) -> None:
    """A name in USGAN_LOAD_PLUGINS that no plugin has: a warning, or in strict mode one
    error line and a non-zero exit (it used to be ignored silently)."""
    proc = run("plugins", "list", "--json", load="good,no-such-plugin")
    assert proc.returncode == 0, proc.stderr
    (line,) = _lines(proc.stderr)
    assert line.startswith("usgan: warning:") and "'no-such-plugin'" in line
    assert "good-gan" in _names(proc.stdout)
    proc = run("plugins", "list", load="no-such-plugin", USGAN_STRICT_PLUGINS="1")
    assert proc.returncode != 0
    (line,) = _lines(proc.stderr)
    assert line.startswith("usgan: error:") and "'no-such-plugin'" in line


def test_plugin_calling_sys_exit_is_contained(run) -> None:
    proc = run("plugins", "list", "--json", load="exits,good")
    assert proc.returncode == 0, proc.stderr
    assert "good-gan" in _names(proc.stdout) and BUILTINS <= _names(proc.stdout)
    (line,) = _lines(proc.stderr)
    assert "'exits'" in line and "SystemExit" in line
    proc = run("plugins", "list", load="exits", USGAN_STRICT_PLUGINS="1")
    assert proc.returncode != 0 and "'exits'" in proc.stderr and "Traceback" not in proc.stderr


def test_plugins_check_command(run) -> None:
    """The conformance kit from the command line: a line per network, exit 1 on a failure."""
    proc = run("plugins", "check", "dcgan", "upconv-refiner", load="example")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _lines(proc.stdout) == ["ok   dcgan (Stage-I, plugin usgan-dcgan)",
                                   "ok   upconv-refiner (Stage-II, plugin example)"]
    proc = run("plugins", "check", "good-gan", "stack", load="good")
    assert proc.returncode == 1
    fail, ok = _lines(proc.stdout)
    assert fail == ("FAIL good-gan (Stage-I, plugin good): ContractError: good-gan: its "
                    "generator must declare int z_dim")
    assert ok.startswith("ok   stack")
    proc = run("plugins", "check", "nope", load="")
    assert proc.returncode == 2 and "unknown model 'nope'" in proc.stderr


def test_the_contract_is_one_raise_style_module() -> None:
    """`usgan.core.contract`: a `ContractError` is a `PluginError` (one line in the CLI) and
    an `AssertionError` (a failed check in a plugin's test suite)."""
    from usgan.core.contract import ContractError, check_pair, check_spec
    from usgan.core.errors import PluginError
    from usgan.core.stage import Stage
    from usgan.core.testing import built

    assert issubclass(ContractError, PluginError) and issubclass(ContractError, AssertionError)
    with pytest.raises(ContractError, match="without the config key"):
        check_spec("r", Stage.TWO, "p", {"in_size": 64})
    with torch.device("meta"):
        g, d = built("dcgan"), built("dcgan", "discriminator")
        assert check_pair(g, d, Stage.ONE, "dcgan").shape == (2, 1, 64, 64)
        small = built("dcgan", "discriminator", size=32)
        with pytest.raises(ContractError, match="discriminator takes 1x32 px"):
            check_pair(g, small, Stage.ONE, "dcgan")
