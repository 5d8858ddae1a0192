"""The network contract in one place: what a registered GAN must declare and give.

Every check raises: `ContractError` (a `PluginError`, and an `AssertionError`, so that a
plugin's own test suite reads it as a failed assertion) naming the network and what is wrong,
or `ShapeMismatchError` for two networks that do not stack. The registry checks a spec when a
plugin adds it; the trainer checks its networks on the meta device before the first step
(shapes only); the conformance kit (`usgan.core.testing`) runs them on real tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .errors import PluginError, ShapeMismatchError
from .layers import batch_slices
from .stage import STAGES, Stage

# What a generator declares (ints), by stage, and what a discriminator declares.
GENERATOR_ATTRS = {Stage.ONE: ("z_dim", "out_channels", "out_size"),
                   Stage.TWO: ("in_channels", "in_size", "z_dim", "out_channels", "out_size")}
DISCRIMINATOR_ATTRS = ("in_channels", "in_size")
# What the trainer sets on a Stage-II from the Stage-I it stacks on: every Stage-II's config
# has these keys.
STAGE2_KEYS = ("in_size", "in_channels", "out_channels")


class ContractError(PluginError, AssertionError):
    """A network does not keep the contract: it names the network and what is wrong."""


def check_spec(name: str, kind: Any, plugin: str, defaults: Mapping[str, Any]) -> None:
    """A spec the registry can hold: a known stage, and a Stage-II config with `STAGE2_KEYS`."""
    if kind not in STAGES:
        raise ContractError(f"{name!r} has kind {kind!r}; expected stage1 or stage2")
    missing = [k for k in STAGE2_KEYS if k not in defaults]
    if kind == Stage.TWO and missing:
        raise ContractError(
            f"plugin {plugin!r} registers Stage-II {name!r} without the config key(s) "
            f"{', '.join(missing)}; every Stage-II must accept {', '.join(STAGE2_KEYS)} "
            "(set from the Stage-I it stacks on; see docs/plugins.md)")


def check_declares(module: nn.Module, attrs: tuple[str, ...], who: str) -> None:
    """``module`` declares each of ``attrs`` as an int."""
    for attr in attrs:
        if not isinstance(getattr(module, attr, None), int):
            raise ContractError(f"{who} must declare int {attr}")


def check_image(x: torch.Tensor, shape: tuple[int, ...], who: str) -> None:
    """``x`` has ``shape`` and, unless on the meta device, finite values in [-1, 1]."""
    if tuple(x.shape) != shape:
        raise ContractError(f"{who} gave shape {list(x.shape)}, expected {list(shape)}")
    if x.device.type == "meta":
        return
    if not torch.isfinite(x).all():
        raise ContractError(f"{who} gave non-finite values")
    if x.min() < -1.0 or x.max() > 1.0:
        raise ContractError(f"{who} gave values in [{x.min():.3f}, {x.max():.3f}], "
                            "expected [-1, 1]")


def check_logits(logits: torch.Tensor, batch: int, who: str) -> None:
    """A discriminator gives one logit per image."""
    if tuple(logits.shape) != (batch,):
        raise ContractError(f"{who} gave logits of shape {list(logits.shape)} for {batch} "
                            f"images, expected [{batch}]")


def check_stackable(stage1: nn.Module, stage2: nn.Module) -> None:
    """Raise `ShapeMismatchError` unless ``stage1``'s output is what ``stage2`` takes."""
    for who, module, stage in (("Stage-I", stage1, Stage.ONE), ("Stage-II", stage2, Stage.TWO)):
        for attr in GENERATOR_ATTRS[stage]:
            if not hasattr(module, attr):
                raise ShapeMismatchError(f"{who} {type(module).__name__} does not declare {attr}")
    if (stage1.out_size, stage1.out_channels) != (stage2.in_size, stage2.in_channels):
        raise ShapeMismatchError(
            f"Stage-I gives {stage1.out_channels}x{stage1.out_size}x{stage1.out_size} images but "
            f"Stage-II takes {stage2.in_channels}x{stage2.in_size}x{stage2.in_size}; build the "
            f"Stage-II with in_size={stage1.out_size}, in_channels={stage1.out_channels}"
        )


def check_declared(g: nn.Module, d: nn.Module, stage: Stage, who: str) -> None:
    """G and D declare their sizes, and D takes what G gives."""
    check_declares(g, GENERATOR_ATTRS[stage], f"{who}: its generator")
    check_declares(d, DISCRIMINATOR_ATTRS, f"{who}: its discriminator")
    if (d.in_channels, d.in_size) != (g.out_channels, g.out_size):
        raise ContractError(f"{who}: its discriminator takes {d.in_channels}x{d.in_size} px, "
                            f"its generator gives {g.out_channels}x{g.out_size} px")


def check_pair(g: nn.Module, d: nn.Module, stage: Stage, who: str, batch: int = 2
               ) -> torch.Tensor:
    """G and D keep the contract on a batch (`check_declared`, then G's images of the
    declared shape and D's one logit per image). Meant for the meta device (shapes only; on
    another, a BatchNorm in train mode updates its statistics). Returns G's images; a network
    that fails to run is a `ContractError` with its first error line."""
    check_declared(g, d, stage, who)
    try:
        z = torch.zeros(batch, g.z_dim, device=_device(g))
        x = g(z) if stage == Stage.ONE else g(
            torch.zeros(batch, g.in_channels, g.in_size, g.in_size, device=z.device), z)
        check_image(x, (batch, g.out_channels, g.out_size, g.out_size), f"{who}: its generator")
        check_logits(d(x), batch, f"{who}: its discriminator")
    except (AttributeError, RuntimeError, TypeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ContractError(f"{who} fails on a batch of {batch}: {first}") from None
    return x


def _declares(d: nn.Module, attr: str) -> bool:
    inner = d.module if isinstance(d, DistributedDataParallel) else d
    return getattr(inner, attr, False) is True


def per_image(d: nn.Module) -> bool:
    """Whether ``d`` (or the network in a DDP wrapper) declares ``per_image = True``: in
    train mode each image's logit depends on that image alone (no BatchNorm, no minibatch
    statistics), so real and generated images may go through it as one batch."""
    return _declares(d, "per_image")


def per_slice(d: nn.Module) -> bool:
    """Whether ``d`` declares ``per_image`` or ``per_slice = True``: inside
    `usgan.core.layers.batch_slices` each image's logit depends on the images of its slice
    alone (every statistic across the batch is `usgan.core.layers.SliceAware`), so real and
    generated images may go through it as one batch with their slices named."""
    return per_image(d) or _declares(d, "per_slice")


def check_one_pass(d: nn.Module, images: torch.Tensor, who: str) -> None:
    """A D that declares `per_image` gives ``images`` (train mode) the logits it gives each
    half alone, and one that declares `per_slice` does so inside `batch_slices` of the two
    halves. Its buffers are put back before each pass (and after), so a spectral norm's
    power iteration starts from the same vectors. A D that declares neither passes (the
    safe form)."""
    half = images.shape[0] // 2
    checks = [("per_image", contextlib.nullcontext)] if per_image(d) else []
    if _declares(d, "per_slice"):
        checks.append(("per_slice", lambda: batch_slices(d, (half, images.shape[0] - half))))
    if not checks:
        return
    saved = [b.detach().clone() for b in d.buffers()]

    def put_back() -> None:
        with torch.no_grad():
            for b, old in zip(d.buffers(), saved, strict=True):
                b.copy_(old)

    def logits(x: torch.Tensor, context: Any = contextlib.nullcontext) -> torch.Tensor:
        put_back()
        with torch.no_grad(), context():
            return d(x).float()

    parts = torch.cat([logits(images[:half]), logits(images[half:])])
    wrong = [attr for attr, context in checks
             if not torch.allclose(logits(images, context), parts, rtol=1e-4, atol=1e-5)]
    put_back()
    if wrong:
        raise ContractError(
            f"{who}: its discriminator declares {wrong[0]} = True, but an image's logit "
            "depends on the other images in its batch (a BatchNorm or a minibatch statistic "
            f"in train mode that is not SliceAware?); declare {wrong[0]} = False")


def _device(module: nn.Module) -> torch.device:
    first = next(iter(module.parameters()), None)
    return first.device if first is not None else torch.device("cpu")
