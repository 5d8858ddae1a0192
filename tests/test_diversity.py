"""Diversity: mean pairwise distances by hand, collapse scores near 0, a copy of the data 1."""

from __future__ import annotations

import math

import pytest
import torch

from usgan.core.diversity import diversity, mean_pairwise_distance
from usgan.core.errors import DataError


def test_mean_pairwise_distance_by_hand() -> None:
    rows = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    # pairs: 5, 4, 3 -> mean 4 (each pair counted twice over N(N-1) ordered pairs)
    assert mean_pairwise_distance(rows) == pytest.approx(4.0)
    assert mean_pairwise_distance(rows, chunk=1) == pytest.approx(4.0)
    with pytest.raises(DataError, match="at least 2"):
        mean_pairwise_distance(rows[:1])


def test_collapse_is_near_zero_and_the_data_itself_is_one() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(50, 64, generator=g)
    same = diversity(real.clone(), real, "pixels")
    assert same.ratio == pytest.approx(1.0)
    collapsed = real[:1].repeat(50, 1) + 0.01 * torch.rand(50, 64, generator=g)
    assert diversity(collapsed, real, "pixels").ratio < 0.05
    assert math.isnan(diversity(real, real[:1].repeat(3, 1), "pixels").ratio)
