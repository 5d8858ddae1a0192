"""The example third-party plugin (docs/examples/usgan-example-plugin), installed into the venv
by `make venv`, found through the real ``usgan`` entry-point group."""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch

from usgan.core.factory import create_generator, get_spec, list_models
from usgan.core.stacking import StackedGenerator
from usgan.core.testing import check_stage1

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "usgan-example-plugin"
DIST = "usgan-example-plugin"
NAME = "upconv-dcgan"


def _pyproject_version() -> str:
    text = (EXAMPLE / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    assert match, f"{EXAMPLE / 'pyproject.toml'} has no version"
    return match.group(1)


_CHECKED: list[str] = []


def _require_example() -> None:
    """Fail (not skip) when the example plugin is missing or stale: CI runs `make test`."""
    if _CHECKED:
        return
    try:
        dist = distribution(DIST)
    except PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed in this venv; run `make venv` (it installs "
                    f"{EXAMPLE.relative_to(REPO)})", pytrace=False)
    want = _pyproject_version()
    if dist.version != want:
        pytest.fail(f"installed {DIST} is {dist.version} but its pyproject says {want}; "
                    "run `make venv`", pytrace=False)
    eps = [(ep.name, ep.value) for ep in dist.entry_points if ep.group == "usgan"]
    assert eps == [("example", "usgan_example_plugin")], eps
    _CHECKED.append(dist.version)


def test_listed_by_the_cli(usgan_cli) -> None:
    _require_example()
    proc = usgan_cli("plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert NAME in rows, sorted(rows)
    row = rows[NAME]
    assert row["kind"] == "stage1"
    assert row["plugin"] == "example"
    assert row["version"] == _pyproject_version()
    assert row["builtin"] is False
    # The built-ins are still there beside it.
    assert {"dcgan", "dcgan-sn", "dcgan-sn-sa", "stack"} <= set(rows)


def test_registered_in_process() -> None:
    _require_example()
    assert NAME in list_models("stage1")
    spec = get_spec(NAME)
    assert (spec.kind, spec.plugin) == ("stage1", "example")
    json.dumps(dict(spec.defaults))  # JSON-able defaults


def test_uses_only_the_public_core_api() -> None:
    _require_example()
    import usgan_example_plugin

    from usgan.core import Discriminator, Stage1Generator

    g = create_generator(NAME)
    assert isinstance(g, Stage1Generator)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    src = Path(usgan_example_plugin.__file__).parent
    for path in src.glob("*.py"):
        assert "usgan.plugins" not in path.read_text(), f"{path} imports usgan.plugins"
    d = get_spec(NAME).discriminator(**get_spec(NAME).defaults)
    assert isinstance(d, Discriminator)
    assert (d.in_channels, d.in_size) == (1, 64)


def test_conformance() -> None:
    _require_example()
    check_stage1(NAME)


def test_stacks_with_stack() -> None:
    _require_example()
    torch.manual_seed(0)
    s1 = create_generator(NAME)
    s2 = create_generator("stack", in_size=s1.out_size, in_channels=s1.out_channels)
    wrapper = StackedGenerator(s1, s2).eval()
    z1, z2 = wrapper.sample_z(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mid, high = wrapper(z1, z2)
    assert tuple(mid.shape) == (2, 1, 64, 64)
    assert tuple(high.shape) == (2, 1, 256, 256)
    assert -1 <= float(high.min()) and float(high.max()) <= 1
