"""One GAN step: D's update as one pass over real and generated images for a D that
declares per_image or per_slice (its BatchNorm statistics taken per slice)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from usgan.core.contract import ContractError, check_one_pass, per_image, per_slice
from usgan.core.layers import DCGANDiscriminator, MinibatchStd, SliceBatchNorm2d, batch_slices
from usgan.core.testing import built
from usgan.core.train.diffaugment import AdaptiveP
from usgan.core.train.losses import LeCam
from usgan.core.train.step import GANStep, Regularizers, make_optimizers


def _nets(batchnorm: bool, **d_config: bool) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(8, 16 * 16), nn.Unflatten(1, (1, 16, 16)), nn.Tanh())
    return g, DCGANDiscriminator(size=16, d_width=8, d_batchnorm=batchnorm, **d_config)


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


_EXTRAS = [{}, {"reg": Regularizers(label_smoothing=0.1, instance_noise=0.05, r1_gamma=1.0),
               "lecam": LeCam(0.3), "ada": AdaptiveP(0.5, 0.6, images=8, batch=4, interval=1)}]


def _one_and_two_passes(g: nn.Module, d: nn.Module, extra: dict) -> None:
    """Three steps with real and generated images through D as one batch (D's step: one
    forward where there were two) leave the networks, their buffers (BatchNorm's running
    statistics) and the stats where real then fake, each its own pass, leave them."""
    runs = {}
    for joint in (True, False):
        g_run, d_run = copy.deepcopy(g), copy.deepcopy(d)
        seen, stats = _train(g_run, d_run, joint, extra)
        runs[joint] = (g_run, d_run, stats)
        assert seen == ([8, 4] if joint else [4, 4, 4]) * 3  # the G step's pass is last
    for a, b in zip(runs[True][2], runs[False][2], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    for k in (0, 1):
        for (name, p), q in zip(runs[True][k].state_dict().items(),
                                runs[False][k].state_dict().values(), strict=True):
            assert torch.allclose(p.float(), q.float(), rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("extra", _EXTRAS, ids=["plain", "r1-lecam-ada-noise"])
def test_a_per_image_d_takes_one_pass_and_learns_what_two_passes_learn(extra: dict) -> None:
    """A D without BatchNorm: one pass, the learning of two (R1, LeCam, ADA, label smoothing
    and instance noise included)."""
    g, d = _nets(batchnorm=False)
    assert per_image(d)
    _one_and_two_passes(g, d, extra)


@pytest.mark.parametrize("extra", _EXTRAS, ids=["plain", "r1-lecam-ada-noise"])
@pytest.mark.parametrize("mbstd", [False, True], ids=["bn", "bn-mbstd"])
def test_a_batchnorm_d_takes_one_pass_in_slices_and_learns_what_two_passes_learn(
        extra: dict, mbstd: bool) -> None:
    """DCGAN's D, with BatchNorm (and minibatch std): one pass with a slice per kind of
    image, the learning and the running statistics of two passes."""
    g, d = _nets(batchnorm=True, d_mbstd=mbstd)
    assert per_slice(d) and not per_image(d)
    _one_and_two_passes(g, d, extra)


def test_slices_are_what_separate_passes_give() -> None:
    """Inside `batch_slices` a SliceBatchNorm2d (train mode) gives each slice what it gives
    that slice alone and moves its running statistics as two calls would; outside it is
    nn.BatchNorm2d; MinibatchStd groups within each slice."""
    x = torch.randn(7, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    sliced, plain = SliceBatchNorm2d(3), nn.BatchNorm2d(3)
    plain.load_state_dict(sliced.state_dict())
    with batch_slices(sliced, (3, 4)):
        joint = sliced(x)
    assert torch.allclose(joint, torch.cat([plain(x[:3]), plain(x[3:])]), atol=1e-6)
    for a, b in zip(sliced.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    assert sliced.slices == () and torch.allclose(sliced(x), plain(x), atol=1e-6)
    std, y = MinibatchStd(), torch.cat([x, x[:1]])
    with batch_slices(nn.Sequential(std), (4, 4)):
        joint = std(y)
    assert torch.equal(joint, torch.cat([std(y[:4]), std(y[4:])]))
    assert not torch.equal(std(y), joint)  # without slices, groups cross the halves


def test_the_step_passes_real_and_fake_apart_through_a_d_with_batch_statistics() -> None:
    """A D with BatchNorm that declares neither per_image nor per_slice (here: DCGAN's D
    with its declaration taken back) keeps a pass per kind of image."""
    g, d = _nets(batchnorm=True)
    d.per_slice = False
    assert not per_slice(d) and not per_slice(nn.Conv2d(1, 1, 1))
    seen, _ = _train(g, d, None, {}, steps=1)
    assert seen == [4, 4, 4]


def test_the_builtin_discriminators_declare_what_they_are() -> None:
    """Every built-in D has BatchNorm by default, in slices (per_slice); without it
    (``d_batchnorm=False``) the spectral-norm Ds are per-image unless minibatch std couples
    the images."""
    names = ("dcgan", "dcgan-sn", "dcgan-sn-sa", "stack")
    assert not any(per_image(built(n, "discriminator")) for n in names)
    assert all(per_slice(built(n, "discriminator")) for n in names)
    assert built("dcgan-sn", "discriminator", d_batchnorm=False).per_image
    assert built("dcgan-sn-sa", "discriminator", d_batchnorm=False).per_image
    assert not built("dcgan-sn-sa", "discriminator", d_batchnorm=False, d_mbstd=True).per_image


def test_the_conformance_kit_checks_the_declaration_and_leaves_the_buffers() -> None:
    """A D that declares per_image with BatchNorm is caught, and one that declares per_slice
    with torch's own BatchNorm; spectral-norm ones, with and without BatchNorm in slices, pass
    and their buffers (power-iteration vectors, running statistics) are where they were."""
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    liar = built("dcgan", "discriminator").train()
    liar.per_image = True
    with pytest.raises(ContractError, match=r"declares per_image = True, but an image's "
                                            r"logit depends on the other images"):
        check_one_pass(liar, x, "liar")
    torch_bn = nn.Sequential(nn.Conv2d(1, 2, 4, 4), nn.BatchNorm2d(2), nn.Flatten(),
                             nn.LazyLinear(1), nn.Flatten(0))
    torch_bn(x)
    torch_bn.per_slice = True
    with pytest.raises(ContractError, match=r"declares per_slice = True"):
        check_one_pass(torch_bn, x, "liar")
    for config in ({"d_batchnorm": False}, {}, {"d_mbstd": True}):
        honest = built("dcgan-sn-sa", "discriminator", **config).train()
        before = [b.clone() for b in honest.buffers()]
        check_one_pass(honest, x, "honest")
        assert all(torch.equal(a, b) for a, b in zip(before, honest.buffers(), strict=True))
