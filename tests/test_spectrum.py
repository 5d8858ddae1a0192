"""Power by scale: the bands by hand, a copy of the data 1 everywhere, blur removes the fine
bands, grain adds to them, a regular pattern lands in its own band, other sizes resized."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from usgan.core.errors import DataError
from usgan.core.spectrum import PERIODS, band_of, mean_power, spectrum


def _smooth_images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """uint8 images with detail at every scale: noise blurred a little."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    x = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    return (x * 255).round().to(torch.uint8)


def _as_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def test_bands_by_hand() -> None:
    band = band_of(16, 16)
    assert band[0, 0] == -1  # the mean is in no band
    assert band[0, 8] == 0  # 0.5 cycles per pixel: period 2 px, the finest band
    assert band[0, 5] == 0  # period 3.2 px
    assert band[0, 4] == 1  # period 4 px opens the 4-8 px band
    assert band[3, 0] == 1  # period 5.3 px, the other direction
    assert band[0, 1] == 3  # period 16 px: 16-32
    assert band[8, 8] == -1  # past the Nyquist radius (period 1.4 px)
    assert len(PERIODS) == 5


def test_a_copy_of_the_data_is_one_in_every_band() -> None:
    real = _smooth_images(12)
    got = spectrum(real.clone(), real)
    assert list(got.bands) == ["2-4 px", "4-8 px", "8-16 px", "16-32 px", "32-64 px"]
    assert all(v == pytest.approx(1.0) for v in got.bands.values())
    assert got.as_json() == {"periods": list(got.bands), "ratios": list(got.bands.values())}


def test_blur_takes_the_fine_bands_away_and_grain_adds_to_them() -> None:
    real = _smooth_images(12)
    blurred = _as_uint8(F.avg_pool2d(real.float(), 5, 1, 2, count_include_pad=False))
    got = spectrum(blurred, real)
    assert got.fine < 0.1 and got.bands["32-64 px"] > 0.8
    grain = torch.randn(real.shape, generator=torch.Generator().manual_seed(1)) * 40
    assert spectrum(_as_uint8(real.float() + grain), real).fine > 2


def test_a_regular_pattern_lands_in_its_band() -> None:
    real = _smooth_images(12)
    stripes = 40 * torch.sin(torch.arange(64) * 2 * torch.pi / 10)  # period 10 px, rows
    got = spectrum(_as_uint8(real.float() * 0.7 + 38 + stripes[:, None]), real)
    assert got.bands["8-16 px"] > 5 * max(got.bands["2-4 px"], got.bands["32-64 px"])


def test_the_mean_and_bands_that_do_not_fit_are_left_out() -> None:
    real = _smooth_images(4, size=16)
    assert list(spectrum(real, real).bands) == ["2-4 px", "4-8 px", "8-16 px"]
    flat = torch.full((2, 1, 16, 16), 77, dtype=torch.uint8)
    assert float(mean_power(flat).abs().max()) == pytest.approx(0, abs=1e-20)
    with pytest.raises(DataError, match="at least 1 image"):
        mean_power(flat[:0])


def test_real_images_of_another_size_are_resized_to_the_generated_ones() -> None:
    real = _smooth_images(8, size=128)
    small = _as_uint8(F.interpolate(real.float(), size=64, mode="bilinear", antialias=True,
                                    align_corners=False))
    got = spectrum(small, real)
    assert list(got.bands)[-1] == "32-64 px"
    assert all(v == pytest.approx(1.0, abs=0.02) for v in got.bands.values())
    rgb = small.repeat(1, 3, 1, 1)  # three equal channels: the same gray image
    assert spectrum(rgb, small).fine == pytest.approx(1.0)
