"""DiffAugment, EMA and the checkpoint format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from usgan.core.errors import UnknownNameError
from usgan.core.train.checkpoint import flatten, load_checkpoint, save_checkpoint, unflatten
from usgan.core.train.diffaugment import augment, diff_augment, draw, parse_policy
from usgan.core.train.ema import EMA
from usgan.core.train.step import GANStep, load_optimizer, make_optimizers


def _x() -> torch.Tensor:
    return torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_each_policy_changes_images_reproducibly_and_keeps_gradients(policy: str) -> None:
    x = _x().requires_grad_(True)
    a = diff_augment(x, [policy], torch.Generator().manual_seed(1))
    b = diff_augment(x, [policy], torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cutout_blacks_out_a_quarter_and_translation_pads_black() -> None:
    x = torch.ones(8, 1, 16, 16)
    cut = diff_augment(x, ["cutout"], torch.Generator().manual_seed(2))
    frac = (cut == -1).float().mean(dim=(1, 2, 3))
    assert ((frac > 0) & (frac <= 0.25 + 1e-6)).all()
    moved = diff_augment(x, ["translation"], torch.Generator().manual_seed(3))
    assert set(moved.unique().tolist()) <= {-1.0, 1.0} and (moved == 1).any()


def _one_by_one(img: torch.Tensor, policy: list[str], u: torch.Tensor, p: float
                ) -> torch.Tensor:
    """One image, DiffAugment's ops written out one at a time with slices: the oracle."""
    _, h, w = img.shape
    for k, name in enumerate(policy):
        if u.shape[-1] > 2 and not bool(u[k, 2] < p):
            continue
        a, b = u[k, 0], u[k, 1]
        if name == "color":
            img = img + (float(a) - 0.5)
            mean = img.mean()
            img = (img - mean) * (float(b) + 0.5) + mean
        elif name == "translation":
            sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            ty, tx = int(a * (2 * sh + 1)) - sh, int(b * (2 * sw + 1)) - sw
            out = torch.full_like(img, -1.0)  # out[y, x] = img[y - ty, x - tx]
            out[:, max(ty, 0):h + min(ty, 0), max(tx, 0):w + min(tx, 0)] = \
                img[:, max(-ty, 0):h + min(-ty, 0), max(-tx, 0):w + min(-tx, 0)]
            img = out
        else:
            ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
            top = int(a * (h + 1 - ch % 2)) - ch // 2
            left = int(b * (w + 1 - cw % 2)) - cw // 2
            img = img.clone()
            img[:, max(top, 0):max(top + ch, 0), max(left, 0):max(left + cw, 0)] = -1.0
    return img


@pytest.mark.parametrize("policy", ["translation", "cutout", "translation,cutout",
                                    "cutout,translation", "color,translation,cutout",
                                    "translation,color,cutout"])
@pytest.mark.parametrize("p", [1.0, 0.5, "tensor"])
def test_fused_ops_are_the_ops_one_at_a_time(policy: str, p: float | str) -> None:
    """Each run of geometric ops is one gather and colour one affine map: the same images
    and gradients as the ops applied one at a time (a rectangle, two channels, per image)."""
    names, gen = parse_policy(policy), torch.Generator().manual_seed(5)
    x = (torch.rand(32, 2, 12, 20, generator=gen) * 2 - 1).requires_grad_(True)
    prob = torch.tensor(0.7) if p == "tensor" else float(p)
    u = draw(32, len(names), gen, prob, x.device)
    assert u.shape == (32, len(names), 2 if prob == 1.0 else 3)
    got = augment(x, names, u, prob)
    want = torch.stack([_one_by_one(x[i], names, u[i], float(prob)) for i in range(32)])
    weights = torch.rand(x.shape, generator=gen)
    grads = [torch.autograd.grad((y * weights).sum(), x)[0] for y in (got, want)]
    if "color" in names:  # x * c + mean * (1 - c) + b rounds apart from the oracle's order
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(grads[0], grads[1])
    else:  # moved and blacked-out pixels: exact
        assert torch.equal(got, want) and torch.equal(grads[0], grads[1])
    assert not torch.equal(got, x)


def test_parse_policy() -> None:
    assert parse_policy("color, cutout") == ["color", "cutout"]
    assert parse_policy("") == []
    with pytest.raises(UnknownNameError, match="did you mean 'color'"):
        parse_policy("colour")


def test_ema_tracks_weights_and_copies_buffers() -> None:
    torch.manual_seed(0)  # the weights (not the test's order under xdist) decide the numbers
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.5)
    before = ema.shadow[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2))  # moves BN running stats
    ema.update(model)
    # lerp and before + 0.5 round apart by ~3e-8: an absolute tolerance for weights near -0.5
    assert torch.allclose(ema.shadow[0].weight, before + 0.5, atol=1e-6)
    assert torch.equal(ema.shadow[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in ema.shadow.parameters())


def test_ema_foreach_update_is_the_per_tensor_formula() -> None:
    """One `torch._foreach_lerp_` (few launches on a GPU) gives, bit for bit, the shadow a
    per-tensor ``lerp_`` loop gives, warm-up included."""
    import copy

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    ema, ref = EMA(model, 0.9, warmup=True), copy.deepcopy(model)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(5, 3))
        decay = ema.current_decay()
        ema.update(model)
        with torch.no_grad():
            for s, p in zip(ref.parameters(), model.parameters(), strict=True):
                s.lerp_(p, 1 - decay)
            for s, b in zip(ref.buffers(), model.buffers(), strict=True):
                s.copy_(b)
    assert all(torch.equal(a, b) for a, b in zip(ema.shadow.state_dict().values(),
                                                 ref.state_dict().values(), strict=True))


def test_checkpoint_structure_round_trips() -> None:
    opt = torch.optim.Adam(nn.Linear(3, 1).parameters())
    state = {"step": 3, "rng": [torch.get_rng_state()], "opt": opt.state_dict(),
             "t": (1, 2.5, None, "x"), "nested": {0: torch.arange(3)}}
    tensors: dict[str, torch.Tensor] = {}
    back = unflatten(flatten(state, tensors), tensors)
    assert back["step"] == 3 and back["t"] == (1, 2.5, None, "x")
    assert torch.equal(back["rng"][0], state["rng"][0])
    assert torch.equal(back["nested"][0], torch.arange(3))
    assert back["opt"]["param_groups"] == state["opt"]["param_groups"]


def test_adam_resumes_from_a_checkpoint_exactly_with_channels_last_weights(tmp_path: Path
                                                                         ) -> None:
    """A checkpoint stores the moments contiguous; torch's fused Adam (on the CPU as on a
    GPU) reads a channels_last weight and its moments as flat arrays, so `load_optimizer`
    lays each moment out as its parameter: two steps, a checkpoint, two more are four."""
    cl = torch.channels_last
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=cl)

    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        d = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 2, 3))
        d = d.to(memory_format=cl)
        return d, make_optimizers(d, d)[1]

    def train(d: nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            d(x).square().mean().backward()
            opt.step()

    straight, opt = fresh()
    assert opt.param_groups[0]["fused"]  # the form this test is about
    train(straight, opt, 4)
    resumed, opt = fresh()
    train(resumed, opt, 2)
    path = save_checkpoint(tmp_path, 2, {"d": resumed.state_dict(), "opt": opt.state_dict()})
    ckpt = load_checkpoint(path)
    resumed, opt = fresh()
    resumed.load_state_dict(ckpt["d"])
    load_optimizer(opt, ckpt["opt"])
    train(resumed, opt, 2)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("fake_size, calls", [(16, 2), (8, 3)])
def test_the_step_augments_real_and_fake_in_one_call_unless_their_sizes_differ(
        monkeypatch: pytest.MonkeyPatch, fake_size: int, calls: int) -> None:
    """D's step sends the real and the generated batch through DiffAugment as one batch (the
    G step is the second call); images of another size than the real ones go on their own."""
    import usgan.core.train.step as step_module

    sizes: list[tuple[int, ...]] = []

    def counted(x: torch.Tensor, *args: object) -> torch.Tensor:
        sizes.append(tuple(x.shape))
        return diff_augment(x, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(step_module, "diff_augment", counted)
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(2, 1))
    g = nn.Sequential(nn.Linear(4, fake_size ** 2), nn.Unflatten(1, (1, fake_size, fake_size)),
                      nn.Tanh())
    step = GANStep(lambda noise: g(noise[0]), d, *make_optimizers(g, d), policy=["cutout"],
                   aug=torch.Generator().manual_seed(0))
    stats = step(_x(), [torch.randn(4, 4)])
    assert len(sizes) == calls and sizes[0][0] == (8 if calls == 2 else 4)
    assert set(stats.as_dict()) == {"loss_d", "loss_g", "d_real", "d_fake"}
