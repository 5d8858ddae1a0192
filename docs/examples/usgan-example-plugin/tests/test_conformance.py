"""The plugin's own tests: usgan's conformance checks plus a few of its own."""

from __future__ import annotations

import pytest
import torch

from usgan.core import ConfigError
from usgan.core.factory import create_generator, get_spec, list_models
from usgan.core.testing import check_stage1, check_stage2


def test_registered_through_the_entry_point() -> None:
    assert "upconv-dcgan" in list_models("stage1")
    assert get_spec("upconv-dcgan").plugin == "example"


def test_conformance_default() -> None:
    check_stage1("upconv-dcgan")


@pytest.mark.parametrize("size", [32, 128])
def test_conformance_other_sizes(size: int) -> None:
    check_stage1("upconv-dcgan", {"size": size})


def test_no_transposed_convs() -> None:
    g = create_generator("upconv-dcgan")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in g.modules())


def test_bad_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="power of two"):
        create_generator("upconv-dcgan", size=48)


def test_refiner_conformance() -> None:
    check_stage2("upconv-refiner")
    check_stage2("upconv-refiner", {"in_size": 32, "out_size": 128, "width": 16})


def test_refiner_stacks_under_any_stage1() -> None:
    check_stage1("upconv-dcgan", stage2="upconv-refiner")
