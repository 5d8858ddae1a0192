"""Conformance checks for plugin authors: call these from your plugin's own test suite.

    from usgan.core.testing import check_stage1
    def test_my_gan():
        check_stage1("my-gan")          # a registered name, or a GANSpec

Each check raises ``AssertionError`` with a message saying what is wrong (the contract's
checks, `usgan.core.contract`, raise `ContractError`, which is one).
"""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import load, save
from torch import nn

from .contract import check_declared, check_image, check_logits, check_one_pass
from .noise import noise_for
from .plugin_manager import get_registry
from .registry import GANSpec, Registry, build
from .stacking import DEFAULT_STAGE2, StackedGenerator, stage2_config
from .stage import Stage
from .train.step import GANStep, NonFiniteLoss, make_optimizers


def _spec(spec_or_name: GANSpec | str, registry: Registry) -> GANSpec:
    return registry.get(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name


def _build(spec: GANSpec, role: str, config: dict[str, Any]) -> nn.Module:
    factory = spec.generator if role == "generator" else spec.discriminator
    return factory(**spec.resolve(config))


def _pair(spec_or_name: GANSpec | str, config: dict[str, Any] | None, registry: Registry
          ) -> tuple[GANSpec, dict[str, Any], nn.Module, nn.Module]:
    """The spec, its config, and G and D built from seed 0."""
    spec = _spec(spec_or_name, registry)
    config = dict(config or {})
    torch.manual_seed(0)
    return spec, config, _build(spec, "generator", config), _build(spec, "discriminator", config)


def _roundtrip(module: nn.Module, make: Any) -> nn.Module:
    """Save ``module``'s state_dict as safetensors bytes and load it strictly into a new one."""
    state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    blob = save(state)
    fresh = make()
    fresh.load_state_dict(load(blob), strict=True)
    return fresh


def _one_step(generate: Any, g: nn.Module, d: nn.Module, noise: tuple[torch.Tensor, ...],
              real: torch.Tensor) -> None:
    """One training step exactly as the trainer runs it (`usgan.core.train.step.GANStep`),
    after D's logits are checked (and, if D declares `per_image` or `per_slice`, that
    declaration)."""
    with torch.no_grad():
        check_logits(d(real), real.shape[0], "discriminator")
    check_one_pass(d, torch.rand(4, *real.shape[1:], generator=torch.Generator().manual_seed(3))
                    * 2 - 1, "discriminator")
    opt_g, opt_d = make_optimizers(g, d)
    try:
        GANStep(generate, d, opt_g, opt_d)(real, noise)
    except NonFiniteLoss as err:
        raise AssertionError(f"one training step: {err}") from None


def check_stage1(
    spec_or_name: GANSpec | str, config: dict[str, Any] | None = None, batch: int = 2,
    registry: Registry | None = None, stage2: str = DEFAULT_STAGE2,
) -> None:
    """Check a Stage-I GAN against the interface and the rest of usgan.

    Output shape and range; determinism under a seed; a strict state_dict round trip through
    safetensors; composition with the default Stage-II; one optimizer step of G and D.
    """
    registry = registry or get_registry()
    spec, config, g, d = _pair(spec_or_name, config, registry)
    check_declared(g, d, Stage.ONE, spec.name)
    shape = (batch, g.out_channels, g.out_size, g.out_size)

    g.eval()
    (z,) = noise_for([g], batch, torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = g(z)
        check_image(x, shape, "generator")
        assert torch.equal(x, g(z)), "generator is not deterministic in eval mode"
        check_logits(d.eval()(x), batch, "discriminator")

    torch.manual_seed(0)
    g_again = _build(spec, "generator", config).eval()
    with torch.no_grad():
        assert torch.equal(g_again(z), x), "same seed built a different generator"

    for module, role in ((g, "generator"), (d, "discriminator")):
        fresh = _roundtrip(module, lambda role=role: _build(spec, role, config)).eval()
        with torch.no_grad():
            a = module(z) if role == "generator" else module(x)
            b = fresh(z) if role == "generator" else fresh(x)
        assert torch.equal(a, b), f"{role} output changed after a safetensors round trip"

    s2_spec = registry.get(stage2, "stage2")
    s2 = _build(s2_spec, "generator", stage2_config(g))
    stacked = StackedGenerator(_build(spec, "generator", config), s2)
    z1, z2 = stacked.sample_z(batch, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mid, high = stacked.eval()(z1, z2)
    check_image(mid, shape, "stacked Stage-I")
    check_image(high, (batch, g.out_channels, s2.out_size, s2.out_size), "stacked Stage-II")

    g.train()
    d.train()
    real = torch.rand(batch, *shape[1:]) * 2 - 1
    _one_step(lambda noise: g(noise[0]), g, d, noise_for([g], batch), real)


def check_stage2(
    spec_or_name: GANSpec | str, config: dict[str, Any] | None = None, batch: int = 2,
    registry: Registry | None = None,
) -> None:
    """Check a Stage-II GAN: shapes, range, round trip and one optimizer step."""
    spec, config, g, d = _pair(spec_or_name, config, registry or get_registry())
    check_declared(g, d, Stage.TWO, spec.name)
    x = torch.rand(batch, g.in_channels, g.in_size, g.in_size) * 2 - 1
    (z,) = noise_for([g], batch)
    shape = (batch, g.out_channels, g.out_size, g.out_size)
    with torch.no_grad():
        y = g.eval()(x, z)
    check_image(y, shape, "Stage-II generator")
    fresh = _roundtrip(g, lambda: _build(spec, "generator", config)).eval()
    with torch.no_grad():
        assert torch.equal(fresh(x, z), y), "Stage-II output changed after a round trip"
    g.train()
    real = torch.rand(*shape) * 2 - 1
    _one_step(lambda noise: g(x, noise[0]), g, d.train(), (z,), real)


def built(name: str, role: str = "generator", **config: Any) -> nn.Module:
    """Build a registered network (a shortcut for tests)."""
    return build(get_registry(), name, role, config)  # type: ignore[arg-type]


__all__ = ["check_stage1", "check_stage2"]

