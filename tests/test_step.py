"""One GAN step: D's update as one pass over real and generated images for a per-image D."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from usgan.core.contract import ContractError, check_per_image, per_image
from usgan.core.layers import DCGANDiscriminator
from usgan.core.testing import built
from usgan.core.train.diffaugment import AdaptiveP
from usgan.core.train.losses import LeCam
from usgan.core.train.step import GANStep, Regularizers, make_optimizers


def _nets(batchnorm: bool) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(8, 16 * 16), nn.Unflatten(1, (1, 16, 16)), nn.Tanh())
    return g, DCGANDiscriminator(size=16, d_width=8, d_batchnorm=batchnorm)


def _train(g: nn.Module, d: nn.Module, joint: bool | None, extra: dict, steps: int = 3
           ) -> tuple[list[int], list[dict[str, float]]]:
    """``steps`` steps from fixed inputs; returns the batch sizes D saw and the stats."""
    seen: list[int] = []
    d.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    extra = dict(extra)  # each run its own stateful parts
    extra.update({k: copy.deepcopy(v) for k, v in extra.items() if k in ("ada", "lecam")})
    step = GANStep(lambda noise: g(noise[0]), d, *make_optimizers(g, d), joint=joint,
                   policy=["translation", "cutout"], aug=torch.Generator().manual_seed(1),
                   **extra)
    data = torch.Generator().manual_seed(2)
    stats = [step(torch.rand(4, 1, 16, 16, generator=data) * 2 - 1,
                  [torch.randn(4, 8, generator=data)]).as_dict() for _ in range(steps)]
    return seen, stats


@pytest.mark.parametrize("extra", [
    {},
    {"reg": Regularizers(label_smoothing=0.1, instance_noise=0.05, r1_gamma=1.0),
     "lecam": LeCam(0.3), "ada": AdaptiveP(0.5, 0.6, images=8, batch=4, interval=1)},
], ids=["plain", "r1-lecam-ada-noise"])
def test_a_per_image_d_takes_one_pass_and_learns_what_two_passes_learn(extra: dict) -> None:
    """Real and generated images go through a per-image D as one batch (D's step: one
    forward where there were two); the networks and the stats after three steps are those
    of real then fake, each its own pass (R1, LeCam, ADA, label smoothing and instance
    noise included)."""
    g, d = _nets(batchnorm=False)
    assert per_image(d)
    runs = {}
    for joint in (True, False):
        g_run, d_run = copy.deepcopy(g), copy.deepcopy(d)
        seen, stats = _train(g_run, d_run, joint, extra)
        runs[joint] = (g_run, d_run, stats)
        assert seen == ([8, 4] if joint else [4, 4, 4]) * 3  # the G step's pass is last
    for a, b in zip(runs[True][2], runs[False][2], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    for k in (0, 1):
        for (name, p), q in zip(runs[True][k].named_parameters(),
                                runs[False][k].parameters(), strict=True):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-5), name


def test_the_step_passes_real_and_fake_apart_through_a_d_with_batch_statistics() -> None:
    """A D with BatchNorm (or one that declares nothing) keeps a pass per kind of image."""
    g, d = _nets(batchnorm=True)
    assert not per_image(d) and not per_image(nn.Conv2d(1, 1, 1))
    seen, _ = _train(g, d, None, {}, steps=1)
    assert seen == [4, 4, 4]


def test_the_builtin_discriminators_declare_what_they_are() -> None:
    """Every built-in D has BatchNorm by default; without it (``d_batchnorm=False``) the
    spectral-norm Ds are per-image unless minibatch std couples the images."""
    declared = {n: per_image(built(n, "discriminator"))
                for n in ("dcgan", "dcgan-sn", "dcgan-sn-sa", "stack")}
    assert declared == {"dcgan": False, "dcgan-sn": False, "dcgan-sn-sa": False, "stack": False}
    assert built("dcgan-sn", "discriminator", d_batchnorm=False).per_image
    assert built("dcgan-sn-sa", "discriminator", d_batchnorm=False).per_image
    assert not built("dcgan-sn-sa", "discriminator", d_batchnorm=False, d_mbstd=True).per_image


def test_the_conformance_kit_checks_the_declaration_and_leaves_the_buffers() -> None:
    """A D that declares per_image with BatchNorm is caught; a spectral-norm one passes and
    its power-iteration vectors are where they were."""
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    liar = built("dcgan", "discriminator").train()
    liar.per_image = True
    with pytest.raises(ContractError, match=r"declares per_image = True, but an image's "
                                            r"logit depends on the other images"):
        check_per_image(liar, x, "liar")
    honest = built("dcgan-sn-sa", "discriminator", d_batchnorm=False).train()
    before = [b.clone() for b in honest.buffers()]
    check_per_image(honest, x, "honest")
    assert all(torch.equal(a, b) for a, b in zip(before, honest.buffers(), strict=True))
