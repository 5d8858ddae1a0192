"""Layering and packaging: core imports no plugin, the wheel holds one import package
``usgan`` (with the design's top-level folders as subpackages), and every hook is documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

import usgan
import usgan.core
from usgan.core import hookspecs

REPO = Path(__file__).resolve().parents[1]
# Import package -> source folder (pyproject's [tool.setuptools.package-dir]).
FOLDERS = {"usgan": "usgan", "usgan.core": "core", "usgan.plugins": "plugins",
           "usgan.zoo": "zoo", "usgan.cli": "cli", "usgan.benchmarks": "benchmarks",
           "usgan.reproduce": "reproduce"}
FORBIDDEN_FROM_CORE = ("usgan.plugins", "usgan.cli", "usgan.zoo")


def _core_modules() -> list[tuple[str, Path]]:
    return _modules(usgan.core)


def _modules(package: Any) -> list[tuple[str, Path]]:
    mods = [(package.__name__, Path(package.__file__))]
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        spec = info.module_finder.find_spec(info.name.rsplit(".", 1)[-1])  # type: ignore[union-attr]
        assert spec is not None and spec.origin, info.name
        mods.append((info.name, Path(spec.origin)))
    return mods


def _absolute(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (resolving relative imports)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_pkg, node)
            found.append(target)
            found += [f"{target}.{a.name}" for a in node.names]  # from usgan import plugins
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", "")) in {"import_module", "__import__"}:
            found += [a.value for a in node.args if isinstance(a, ast.Constant)
                      and isinstance(a.value, str)]
    return found


def test_core_source_imports_no_plugin() -> None:
    modules = _core_modules()
    assert {"usgan.core.registry", "usgan.core.plugin_manager", "usgan.core.testing"} <= {
        m for m, _ in modules}
    bad = [
        f"{path.relative_to(path.parents[1]) if len(path.parents) > 1 else path}: "
        f"{module} imports {name}"
        for module, path in modules
        for name in _imports(module, path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_FROM_CORE)
    ]
    assert not bad, "usgan.core must not import plugins, cli or zoo:\n" + "\n".join(bad)


# Floors: cli on top; zoo, benchmarks and reproduce (an application of core and zoo, driven
# by the cli) below it; plugins in the middle, core at the bottom. What each may import from
# usgan (anything else, e.g. core importing the package root, is an upward import). The
# benchmarks build networks through the public factory, never a plugin module.
FLOORS = {
    "usgan.core": ("usgan.core",),
    "usgan.plugins": ("usgan.core", "usgan.plugins"),
    "usgan.zoo": ("usgan.core", "usgan.zoo"),
    "usgan.benchmarks": ("usgan.core", "usgan.benchmarks"),
    "usgan.reproduce": ("usgan.core", "usgan.zoo", "usgan.reproduce"),
}


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_floors(package: str) -> None:
    allowed = FLOORS[package]
    bad = [
        f"{module} imports {name}"
        for module, path in _modules(importlib.import_module(package))
        for name in _imports(module, path)
        if (name == "usgan" or name.startswith("usgan."))
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert not bad, f"{package} may import only {allowed} from usgan:\n" + "\n".join(bad)


def test_no_module_over_400_lines() -> None:
    """Long modules are split by concept (one concept, one room)."""
    long = [f"{p.relative_to(REPO)} ({n} lines)"
            for folder in ("core", "plugins", "zoo", "cli", "benchmarks", "reproduce")
            for p in sorted((REPO / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, "modules over 400 lines: " + ", ".join(long)


def test_relative_import_resolution() -> None:
    """The checker above resolves ``from ..plugins import x`` inside usgan.core.sub."""
    node = ast.parse("from ..plugins import dcgan").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _absolute("usgan.core.registry", False, node) == "usgan.plugins"
    assert _absolute("usgan.core.data", True, node) == "usgan.core.plugins"


def test_importing_core_loads_no_plugin() -> None:
    code = (
        "import sys, usgan.core, usgan.core.factory, usgan.core.testing, "
        "usgan.core.stacking, usgan.core.serialization\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('usgan.plugins', 'usgan.cli', "
        "'usgan.zoo')))\n"
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_tests_import_the_installed_package() -> None:
    assert usgan.__file__ and Path(usgan.__file__).is_file()
    core_dir = Path(usgan.core.__file__).resolve().parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert core_dir == REPO / "core" or core_dir == site / "usgan" / "core", core_dir
    if core_dir == REPO / "core":  # editable: the other folders map the same way
        for name, folder in FOLDERS.items():
            mod = importlib.import_module(name)
            assert Path(mod.__file__).resolve().parent == REPO / folder, name


def _source_packages() -> set[str]:
    """Every package (folder with __init__.py) in the source folders, by import name."""
    found = set()
    for pkg, folder in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            if "__pycache__" in rel.parts or any(p.startswith(".") for p in rel.parts):
                continue
            found.add(".".join([pkg, *rel.parts]))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the repo (so the build leaves nothing in the tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist",
                                    "results")
    for folder in FOLDERS.values():
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("usgan-*.whl")
    return path


def test_wheel_holds_one_import_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    (dist_info,) = [t for t in tops if t.endswith(".dist-info")]
    assert dist_info.startswith("usgan-")
    assert tops == {"usgan", dist_info}, f"unexpected top-level entries: {sorted(tops)}"
    for required in ("usgan/__init__.py", "usgan/__main__.py", "usgan/py.typed",
                     "usgan/core/registry.py", "usgan/core/hookspecs.py",
                     "usgan/plugins/dcgan.py", "usgan/plugins/stack.py", "usgan/cli/main.py",
                     "usgan/zoo/__init__.py", "usgan/benchmarks/suite.py",
                     "usgan/reproduce/plan.py"):
        assert required in names, f"{required} is not in {wheel.name}"


def test_wheel_holds_every_source_package(wheel: Path) -> None:
    """A subpackage missing from pyproject's `packages` works editable but not installed."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(p for p in _source_packages()
                     if p.replace(".", "/") + "/__init__.py" not in names)
    assert not missing, (
        f"packages missing from the wheel (add them to [tool.setuptools] packages in "
        f"pyproject.toml): {', '.join(missing)}"
    )


def test_wheel_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (ep_file,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(ep_file).decode()
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
        elif "=" in line:
            key, value = (s.strip() for s in line.split("=", 1))
            sections[current][key] = value
    assert sections.get("console_scripts", {}).get("usgan") == "usgan.cli.main:main"
    assert sections.get("usgan") == {
        "usgan-dcgan": "usgan.plugins.dcgan", "usgan-stack": "usgan.plugins.stack",
        "usgan-zoo": "usgan.zoo.entries"}


def _hookspecs() -> list[tuple[str, inspect.Signature]]:
    marker = f"{hookspecs.PROJECT}_spec"
    return [(name, inspect.signature(fn)) for name, fn in inspect.getmembers(
        hookspecs, inspect.isfunction) if hasattr(fn, marker)]


def test_every_hook_is_documented() -> None:
    specs = _hookspecs()
    assert {n for n, _ in specs} >= {"register_stage1", "register_stage2", "register_commands"}
    doc = (REPO / "docs" / "plugins.md").read_text()
    for name, sig in specs:
        text = f"{name}({', '.join(sig.parameters)})"
        assert text in doc, f"docs/plugins.md does not document the hook {text}"
