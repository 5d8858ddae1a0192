"""No host synchronisation inside a training step: the property a GPU needs, checked on a CPU.

A tensor turned into a Python value (``item``, ``tolist``, ``bool``, ``float``, ...) makes a
GPU wait for every launched kernel, and so does a blocking copy to a device (``.to(device)``
without ``non_blocking``: from pageable host memory it waits for the queue). `HostSyncs`
counts both through a `TorchFunctionMode`; the step must make none between ``--log-every``
steps (losses and statistics stay on the device; random draws made on the CPU travel through
`usgan.core.noise.to_device`). Adam's step counters are the one exception it leaves out:
they live on the host (``capturable=False``), so reading them is no device synchronisation.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from usgan.core.noise import noise_for
from usgan.core.testing import built
from usgan.core.train.options import TrainOptions
from usgan.core.train.step import GANStep, NonFiniteLoss, make_optimizers
from usgan.core.train.trainer import Trainer

CONVERSIONS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"}


class HostSyncs(TorchFunctionMode):
    """Counts tensor -> Python conversions made while active (Adam's host counters aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in CONVERSIONS:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            self.count += not caller.startswith("torch.optim")
        elif name in ("to", "cuda") and _blocking_copy(name, args[1:], kwargs):
            self.count += 1
        return func(*args, **kwargs)


def _blocking_copy(name: str, args: Any, kwargs: dict[str, Any]) -> bool:
    """A ``.to``/``.cuda`` that names a device and does not ask for ``non_blocking``: on a
    GPU, a copy the host waits for (here on the CPU it copies nothing, and is counted)."""
    device = name == "cuda" or "device" in kwargs or any(
        isinstance(a, (torch.device, str, torch.Tensor)) for a in args)
    return device and not (kwargs.get("non_blocking") or any(a is True for a in args))


def _step(lazy: bool) -> tuple[GANStep, torch.Tensor, torch.nn.Module]:
    torch.manual_seed(0)
    g = built("dcgan", g_width=4, d_width=4)
    d = built("dcgan", "discriminator", g_width=4, d_width=4)
    step = GANStep(lambda noise: g(noise[0]), d, *make_optimizers(g, d),
                   policy=["translation", "cutout"], aug=torch.Generator(), lazy_check=lazy)
    return step, torch.rand(4, 1, 64, 64) * 2 - 1, g


def test_a_lazily_checked_step_makes_no_host_sync() -> None:
    step, real, g = _step(lazy=True)
    with HostSyncs() as syncs:
        for _ in range(3):
            stats = step(real, noise_for([g], 4))
    assert syncs.count == 0
    with HostSyncs() as syncs:
        assert set(stats.as_dict()) == {"loss_d", "loss_g", "d_real", "d_fake"}
        step.verify()
    assert 1 <= syncs.count <= 3  # read when logged: the numbers, then the loss check
    eager, real, g = _step(lazy=False)
    with HostSyncs() as syncs:
        eager(real, noise_for([g], 4))
    assert syncs.count == 2  # the counter sees a per-step check: D's and G's loss


def test_a_lazy_check_still_finds_a_nan_loss() -> None:
    step, real, g = _step(lazy=True)
    step(real, noise_for([g], 4))
    step(real * float("nan"), noise_for([g], 4))
    step(real, noise_for([g], 4))
    with pytest.raises(NonFiniteLoss) as err:
        step.verify()
    assert err.value.who == "discriminator" and err.value.steps == 3
    step.verify()  # the sums start again


@pytest.mark.parametrize("stage", [1, 2])
def test_the_trainer_syncs_only_at_log_steps(tmp_path: Path, stage: int) -> None:
    """Ten more steps (one of them a log step) add the same few conversions each time: none
    of them per step; for Stage-II too (its degraded real pairs, crops and Stage-I inputs)."""
    counts = {}
    for steps in (10, 20, 30):
        length = ({"max_steps": steps, "stage2": None} if stage == 1 else
                  {"max_steps": 2, "stage2_max_steps": steps,
                   "stage2_config": {"width": 4, "d_width": 4, "max_width": 16}})
        opts = TrainOptions(data="phantom:n=8", classes=["healthy"], batch_size=4,
                            log_every=10, sample_every=1000, checkpoint_every=1000, quiet=True,
                            stage1_config={"g_width": 4, "d_width": 4}, **length)
        with HostSyncs() as syncs:
            Trainer(opts, tmp_path / str(steps), echo=lambda m: None).train()
        counts[steps] = syncs.count
    # per log step: the logged numbers (one tolist) and the loss check (D's, G's)
    assert counts[30] - counts[20] == counts[20] - counts[10] == 3, counts
