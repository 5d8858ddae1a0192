"""The built-in phantom: a procedural B-mode liver image simulator.

Each image is simulated in the probe's polar frame (depth x beam angle), where the point
spread function is spatially invariant, then scan-converted to a curvilinear sector on black:

1. an echogenicity map: liver parenchyma with a smooth texture, anechoic vessels with bright
   walls, a bright curved diaphragm with dim lung below, thin bright abdominal-wall layers;
2. speckle: complex Gaussian scatterers (dense random scatterers) weighted by the map and
   convolved (FFT) with a Gaussian point spread function; the envelope is the modulus, so its
   amplitude statistics are Rayleigh (mean/std = 1.91 in homogeneous tissue);
3. depth attenuation, partly compensated by time-gain compensation, then log compression;
4. scan conversion (bilinear) to a sector with black outside.

Steatosis (``grade`` 0 = healthy .. 1 = steatosis) raises parenchymal echogenicity, increases
attenuation with depth and fades vessel walls and the diaphragm. Frames are grouped into
simulated subjects that share geometry, vessel layout and gain; frames of one subject differ by
speckle and a small probe motion. Everything is deterministic per ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

VERSION = 1  # bump when the images change, so cached phantoms are remade

PHANTOM_CLASSES: dict[str, float] = {"healthy": 0.0, "steatosis": 1.0}


@dataclass(frozen=True)
class SubjectParams:
    """What the frames of one simulated subject share."""

    r0: float  # apex offset (probe radius) in units of the imaging depth
    half_angle: float  # radians
    gain_db: float
    tgc_db: float  # residual gain slope over depth (dB, + brightens the deep field)
    vessels: torch.Tensor  # [V, 4]: x, depth, radius, aspect (cartesian units of depth)
    diaphragm: torch.Tensor  # [4]: centre x, centre depth, radius, thickness
    texture_seed: int


def _subject(gen: torch.Generator) -> SubjectParams:
    def u(a: float, b: float) -> float:
        return a + (b - a) * float(torch.rand((), generator=gen))

    n_vessels = int(torch.randint(2, 6, (), generator=gen))
    vessels = torch.stack(
        [
            torch.tensor([u(-0.35, 0.35), u(0.2, 0.7), u(0.015, 0.06), u(0.5, 1.0)])
            for _ in range(n_vessels)
        ]
    )
    # The diaphragm: a large circle whose lower arc crosses the deep field.
    radius = u(0.8, 1.6)
    diaphragm = torch.tensor([u(-0.5, 0.5), u(0.86, 0.97) - radius, radius, u(0.012, 0.02)])
    return SubjectParams(
        r0=u(0.08, 0.35),
        half_angle=math.radians(u(33, 42)),
        gain_db=u(-2.0, 2.0),
        tgc_db=u(-2.0, 2.0),
        vessels=vessels,
        diaphragm=diaphragm,
        texture_seed=int(torch.randint(0, 2**31 - 1, (), generator=gen)),
    )


def _psf_fft(nr: int, nt: int, sigma_r: float, sigma_t: float) -> torch.Tensor:
    """FFT of a centred Gaussian PSF on an ``nr x nt`` grid (circular convolution)."""
    r = torch.fft.fftfreq(nr) * nr
    t = torch.fft.fftfreq(nt) * nt
    k = torch.exp(-(r[:, None] ** 2) / (2 * sigma_r**2) - (t[None, :] ** 2) / (2 * sigma_t**2))
    return torch.fft.fft2(k / k.sum().sqrt())


def _smooth_noise(shape: tuple[int, ...], scale: float, gen: torch.Generator) -> torch.Tensor:
    """Unit-variance Gaussian noise low-passed to features of about ``scale`` pixels."""
    b, h, w = shape
    coarse = torch.randn(b, 1, max(2, round(h / scale)), max(2, round(w / scale)), generator=gen)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[:, 0]


def simulate_subject(
    n_frames: int, grade: float, seed: int, size: int = 256, subject: int = 0
) -> torch.Tensor:
    """``n_frames`` uint8 images ``[n, 1, size, size]`` of one simulated subject."""
    mixed = seed * 1_000_003 + subject * 7919 + round(grade * 1000)
    gen = torch.Generator().manual_seed(mixed % 2**31)
    sp = _subject(gen)
    n, s = n_frames, size
    nr, nt = s, s  # polar grid: depth samples x beam lines

    # Polar grid -> cartesian positions (units of imaging depth; apex at (0, -r0)).
    depth = (torch.arange(nr) + 0.5) / nr
    theta = (torch.linspace(-1, 1, nt)) * sp.half_angle
    rr = sp.r0 + depth[:, None]
    x = rr * torch.sin(theta)[None, :]
    z = rr * torch.cos(theta)[None, :] - sp.r0  # depth below the top of the arc

    # Per-frame probe motion: a small shift of all structures.
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.03
    xs = x[None] - shift[:, 0, None, None]
    zs = z[None] - shift[:, 1, None, None]

    g = float(grade)
    # Echogenicity in dB relative to parenchyma.
    tex_gen = torch.Generator().manual_seed(sp.texture_seed)
    level = 1.8 * _smooth_noise((1, nr, nt), s / 12, tex_gen).expand(n, nr, nt).clone()
    level += 0.8 * _smooth_noise((n, nr, nt), s / 24, gen)  # frame-to-frame tissue change
    level += 13.0 * g  # steatosis: hyperechoic parenchyma
    # Abdominal wall: bright thin layers in the near field, darker fat between.
    for zc, amp in ((0.03, 10.0), (0.07, 8.0), (0.11, 5.0)):
        level += amp * torch.exp(-((zs - zc) ** 2) / (2 * 0.006**2))
    level -= 4.0 * ((zs > 0.035) & (zs < 0.065)).float()
    # Vessels: anechoic lumen, echogenic wall (portal-vein-like) fading with steatosis.
    wall_db = 9.0 * (1.0 - 0.8 * g)
    for vx, vz, vr, asp in sp.vessels.tolist():
        d = torch.sqrt(((xs - vx) / vr) ** 2 + ((zs - vz) / (vr * asp)) ** 2)
        level += wall_db * torch.exp(-((d - 1.0) ** 2) / (2 * (0.012 / vr) ** 2))
        level = torch.where(d < 1.0, torch.full_like(level, -25.0), level)
    # Diaphragm: bright curved band; below it, dim lung with faint reverberation.
    cx, cz, rad, thick = sp.diaphragm.tolist()
    dist = torch.sqrt((xs - cx) ** 2 + (zs - cz) ** 2) - rad
    level += (16.0 - 7.0 * g) * torch.exp(-(dist**2) / (2 * thick**2))
    level = torch.where(dist > 1.5 * thick, level - 6.0, level)

    # Speckle: complex Gaussian scatterers x amplitude, convolved with the PSF.
    amp = torch.pow(10.0, level / 20.0)
    scat = torch.complex(
        torch.randn(n, nr, nt, generator=gen), torch.randn(n, nr, nt, generator=gen)
    )
    psf = _psf_fft(nr, nt, 0.9 * s / 256, 1.7 * s / 256)
    field = torch.fft.ifft2(torch.fft.fft2(scat * amp) * psf)
    env = field.abs() / math.sqrt(2.0)

    # Attenuation (two-way, dB over the depth) minus time-gain compensation, log compression.
    atten_db = (1.0 + 13.0 * g - sp.tgc_db) * depth[:, None]
    bmode_db = 20.0 * torch.log10(env + 1e-6) - atten_db + sp.gain_db
    dyn_range, top = 60.0, 33.0
    img = ((bmode_db - (top - dyn_range)) / dyn_range).clamp(0, 1)
    # The scanner's display smoothing (a small Gaussian on the log image).
    p = F.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    p = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
    img = 0.25 * p[:, :, :-2] + 0.5 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]

    # Scan conversion: cartesian output pixels -> (beam angle, depth) in the polar image.
    zmin = sp.r0 * math.cos(sp.half_angle) - sp.r0
    xmax = (sp.r0 + 1.0) * math.sin(sp.half_angle)
    margin = 0.02
    ox = torch.linspace(-xmax * (1 + margin), xmax * (1 + margin), s)
    oz = torch.linspace(zmin - margin, 1.0 + margin, s)
    pz, px = torch.meshgrid(oz, ox, indexing="ij")
    pr = torch.sqrt(px**2 + (pz + sp.r0) ** 2)
    pth = torch.atan2(px, pz + sp.r0)
    gx = pth / sp.half_angle
    gy = 2 * (pr - sp.r0) - 1
    grid = torch.stack([gx, gy], -1)[None].expand(n, s, s, 2)
    out = F.grid_sample(
        img[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    inside = (gx.abs() <= 1) & (gy >= -1) & (gy <= 1)
    out = out * inside
    return (out * 255).round().to(torch.uint8)


def simulate(
    n: int,
    grade: float = 1.0,
    seed: int = 0,
    size: int = 256,
    frames: int = 10,
    first_subject: int = 0,
) -> torch.Tensor:
    """``n`` uint8 images ``[n, 1, size, size]`` of one grade, ``frames`` per subject."""
    out = []
    subject = first_subject
    while sum(len(o) for o in out) < n:
        k = min(frames, n - sum(len(o) for o in out))
        out.append(simulate_subject(k, grade, seed, size, subject))
        subject += 1
    return torch.cat(out) if out else torch.zeros(0, 1, size, size, dtype=torch.uint8)


def phantom_items(
    n: int, classes: Sequence[str], grades: dict[str, float], frames: int
) -> list[tuple[str, str, str, dict[str, float]]]:
    """(id, class, subject, meta) of every phantom image, in generation order."""
    items = []
    for cls in classes:
        for i in range(n):
            subj = f"{cls}-{i // frames + 1:03d}"
            items.append((f"{subj}/{i % frames + 1:02d}", cls, subj, {"grade": grades[cls]}))
    return items
