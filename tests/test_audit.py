"""The memorization audit: copies are caught, fresh images are not, pairs are written."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import run_usgan
from PIL import Image

from usgan.core.audit import audit_space, pairs_image, pixels


def _images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=g) * 255).to(torch.uint8)


def test_copies_are_caught_and_fresh_images_are_not() -> None:
    real = _images(30, 0)
    copies = real[[3, 7, 11]]
    report = audit_space(pixels(copies), pixels(real), "pixels")
    assert report.copy_rate == 1.0
    assert sorted((f, r) for f, r, _ in report.closest) == [(0, 3), (1, 7), (2, 11)]
    fresh = audit_space(pixels(_images(10, 1)), pixels(real), "pixels")
    assert fresh.copy_rate == 0.0 and fresh.median_distance > fresh.threshold
    grid = pairs_image(copies, real, report)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3


def _folder(path: Path, images: torch.Tensor) -> Path:
    path.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img[0].numpy(), mode="L").save(path / f"{i:03d}.png")
    return path


def test_cli_audit_writes_json_and_pairs_and_never_overwrites(tmp_path: Path) -> None:
    real_images = _images(20, 2, 64)
    real = _folder(tmp_path / "real", real_images)
    fake = _folder(tmp_path / "fake", torch.cat([real_images[:2], _images(2, 3, 64)]))
    out = tmp_path / "audit"
    r = run_usgan("audit", "--real", str(real), "--fake", str(fake), "--class", "x",
                  "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "audit.json").read_text())
    assert doc["spaces"][0]["copy_rate"] == 0.5 and "copy rate 50.0%" in r.stdout
    assert (out / "closest-pairs.png").is_file()
    again = run_usgan("audit", "--real", str(real), "--fake", str(fake), "--class", "x",
                      "--out", str(out))
    assert again.returncode == 2 and "not empty" in again.stderr
