"""DiffAugment, EMA and the checkpoint format."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from usgan.core.errors import UnknownNameError
from usgan.core.train.checkpoint import flatten, unflatten
from usgan.core.train.diffaugment import diff_augment, parse_policy
from usgan.core.train.ema import EMA


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
