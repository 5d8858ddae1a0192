"""Building blocks for networks, public for plugin authors (the built-ins use exactly these).

    from usgan.core.layers import dcgan_init, apply_spectral_norm, SelfAttention, up_block

- `dcgan_init`: the DCGAN weight init; `apply_spectral_norm` / `has_spectral_norm`;
- `SelfAttention`: the SAGAN block; `MinibatchStd`: ProGAN's batch-diversity feature map;
- `SliceBatchNorm2d` and `batch_slices`: layers with statistics across the batch that, inside
  ``with batch_slices(d, sizes)``, take each slice of the batch as its own batch (how the
  training step runs real and generated images through D in one pass);
- `dcgan_width`: the DCGAN channel schedule; `log2_int`: power-of-two sizes with a clear error;
  `check_refinement_sizes`: a Stage-II's input and output sizes;
- `last_up` / `up_block` / `down_block`: one doubling / halving step as a list of layers (so
  they can be spliced into an ``nn.Sequential`` without changing its state_dict keys);
- `DCGANDiscriminator`: the DCGAN discriminator at any power-of-two size (the built-in
  Stage-I and Stage-II both use it); `check_attention`: a self-attention resolution;
  `check_patch`: a PatchGAN score map's size (``d_patch``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .errors import ConfigError
from .interfaces import Discriminator

UP_MODES = ("transposed", "nearest", "bilinear")


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al.): conv ~ N(0, 0.02), BN gamma ~ N(1, 0.02), beta = 0.

    Call before spectral norm is attached, so the raw weight is what gets initialised.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectral normalization (Miyato et al.) on every conv and linear layer of ``module``."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
            _spectral_norm(m, dim=dim)


def has_spectral_norm(module: nn.Module) -> bool:
    """True when a spectral-norm parametrization sits on ``module``'s weight."""
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


class SliceAware:
    """A layer with a statistic across the batch that `batch_slices` can split: while its
    ``slices`` (sizes along the batch) are set, ``sliced`` runs it on each slice alone, in
    order, and joins the results: what one pass per slice would give, buffers included."""

    slices: tuple[int, ...] = ()

    def sliced(self, run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
               ) -> torch.Tensor:
        if len(self.slices) < 2:
            return run(x)
        return torch.cat([run(part) for part in x.split(list(self.slices))])


@contextmanager
def batch_slices(module: nn.Module, sizes: Sequence[int]) -> Iterator[None]:
    """Inside, every `SliceAware` layer of ``module`` treats the batch as slices of ``sizes``
    (real images, then generated ones), each with its own statistics."""
    layers = [m for m in module.modules() if isinstance(m, SliceAware)]
    for m in layers:
        m.slices = tuple(sizes)
    try:
        yield
    finally:
        for m in layers:
            m.slices = ()


class SliceBatchNorm2d(SliceAware, nn.BatchNorm2d):
    """`nn.BatchNorm2d` (same parameters, buffers and state_dict) that `batch_slices` can
    split: in train mode each slice is normalised with its own statistics, and the running
    ones move slice by slice, in order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # the running statistics: nothing across the batch
            return super().forward(x)
        return self.sliced(super().forward, x)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): ``x + gamma * attention(x)``, gamma starts at 0.

    Query and key are 1x1 convs to ``channels // key_ratio``; the value keeps ``channels``.
    Every position attends over every other one (no 1/sqrt(d) scaling, as in SAGAN).
    """

    def __init__(self, channels: int, key_ratio: int = 8) -> None:
        super().__init__()
        k = max(channels // key_ratio, 1)
        self.query = nn.Conv2d(channels, k, 1)
        self.key = nn.Conv2d(channels, k, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # [B, N, k]
        k = self.key(x).flatten(2).transpose(1, 2)  # [B, N, k]
        v = self.value(x).flatten(2).transpose(1, 2).contiguous()  # [B, N, C]
        # Zero-padded to the value's width, contiguous: the same dot products, but SDPA's
        # fused kernel instead of its general fallback (1.4x faster fwd+bwd on CPU).
        if q.shape[-1] < c:
            q, k = (F.pad(t, (0, c - t.shape[-1])) for t in (q, k))
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # [B, N, C]
        return x + self.gamma * out.transpose(1, 2).reshape(b, c, h, w)


class MinibatchStd(SliceAware, nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN): [N, C, H, W] -> [N, C+1, H, W].

    The batch is split into groups of ``g`` samples, ``g`` the largest divisor of N that is
    <= ``group_size`` (sample n is in group ``n mod N/g``). Per group, the std over the group of
    every feature (``sqrt(var + eps)``), averaged over C, H, W, is appended to the group's
    samples as one constant channel, so D can see how diverse a batch is (against mode
    collapse). Computed in float32 and cast back to ``x.dtype`` (safe under bf16 autocast).
    Inside `batch_slices`, the groups are formed within each slice.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1:
            raise ConfigError(f"group_size must be at least 1, got {group_size}")
        self.group_size, self.eps = group_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sliced(self._append_std, x)

    def _append_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max((d for d in range(1, min(self.group_size, n) + 1) if n % d == 0), default=1)
        y = x.float().reshape(g, n // g, c * h * w)  # [g, N/g, CHW]
        std = (y.var(dim=0, unbiased=False) + self.eps).sqrt().mean(dim=1)  # [N/g]
        feat = std.to(x.dtype).repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feat], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def log2_int(n: int, what: str) -> int:
    """log2 of a power of two, else a `ConfigError` (a ValueError) naming ``what``."""
    if n < 1 or n & (n - 1):
        raise ConfigError(f"{what} must be a power of two, got {n}")
    return n.bit_length() - 1


def check_refinement_sizes(in_size: int, out_size: int) -> None:
    """A Stage-II's sizes: powers of two with ``8 <= in_size <= out_size``."""
    log2_int(in_size, "in_size")
    log2_int(out_size, "out_size")
    if not 8 <= in_size <= out_size:
        raise ConfigError(f"need 8 <= in_size <= out_size, got {in_size} and {out_size}")


def dcgan_width(base: int, size: int, res: int, cap_mult: int = 8) -> int:
    """DCGAN channel width at feature resolution ``res`` of a ``size`` network: ``base`` just
    below the output size, doubling each time the resolution halves, capped at
    ``cap_mult * base``."""
    return min(base * size // (2 * res), base * cap_mult)


def last_up(c_in: int, c_out: int, mode: str = "transposed", bias: bool = False
            ) -> list[nn.Module]:
    """Double the resolution, nothing after: ConvTranspose 4x4 stride 2 (``mode=
    "transposed"``) or nearest/bilinear upsampling then Conv 3x3 (no checkerboard)."""
    if mode not in UP_MODES:
        raise ConfigError(f"upsampling mode must be one of {UP_MODES}, got {mode!r}")
    if mode == "transposed":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]
    return [nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]


def up_block(c_in: int, c_out: int, mode: str = "transposed", norm: bool = True
             ) -> list[nn.Module]:
    """Double the resolution (`last_up`), then BN (unless ``norm=False``: then a bias) and
    ReLU."""
    layers = last_up(c_in, c_out, mode, bias=not norm)
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return [*layers, nn.ReLU(True)]


def down_block(c_in: int, c_out: int, norm: bool = True) -> list[nn.Module]:
    """Halve the resolution: Conv 4x4 stride 2, BN (`SliceBatchNorm2d`; unless
    ``norm=False``: then a bias), LeakyReLU(0.2): the DCGAN discriminator block."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(SliceBatchNorm2d(c_out))
    return [*layers, nn.LeakyReLU(0.2, True)]


def check_attention(attn_res: int, size: int) -> None:
    """A self-attention resolution: a power of two with ``4 <= attn_res < size``."""
    if not (4 <= attn_res < size) or attn_res & (attn_res - 1):
        raise ConfigError(
            f"attn_res={attn_res} must be a power of two with 4 <= attn_res < size={size}"
        )


def check_patch(d_patch: int, size: int) -> None:
    """A patch-score map's size: 0 (off), or a power of two with ``4 <= d_patch <= size / 2``."""
    if d_patch and (not 4 <= d_patch <= size // 2 or d_patch & (d_patch - 1)):
        raise ConfigError(
            f"d_patch={d_patch} must be 0 (one score per image) or a power of two with "
            f"4 <= d_patch <= size/2={size // 2}"
        )


class DCGANDiscriminator(Discriminator):
    """size x size -> ... -> 4x4 (strided convs, LeakyReLU 0.2) -> one logit.

    BatchNorm on every layer but the first (``d_batchnorm``); the Sigmoid is in the loss.
    ``d_mbstd``: a `MinibatchStd` channel before the final conv (ProGAN).
    ``d_patch``: stop halving at ``d_patch`` x ``d_patch`` features and score each position
    with a 3x3 conv (a PatchGAN: each score sees a patch of the image, 78 px at 256 px with
    ``d_patch=16``); the image's logit is the mean of its patch scores. 0 (the default): the
    DCGAN head, one 4x4 conv over the whole 4x4 map.
    """

    def __init__(
        self, channels: int = 1, size: int = 64, d_width: int = 64, spectral_norm: bool = False,
        attention: bool = False, attn_res: int = 16, d_batchnorm: bool = True,
        d_mbstd: bool = False, d_patch: int = 0, **_: object,
    ) -> None:
        super().__init__()
        log2_int(size, "size")
        if size < 8:
            raise ConfigError(f"size must be at least 8, got {size}")
        check_patch(d_patch, size)
        if attention:
            check_attention(attn_res, size)
            if attn_res < d_patch:
                raise ConfigError(f"attn_res={attn_res} is below d_patch={d_patch}: D stops "
                                  f"at {d_patch}x{d_patch} and would never reach it")
        self.in_channels, self.in_size, self.d_patch = channels, size, d_patch
        self.per_image = not (d_batchnorm or d_mbstd)  # no statistic across the batch
        self.per_slice = True  # its statistics across the batch are all `SliceAware`
        c = dcgan_width(d_width, size, size // 2)
        layers: list[nn.Module] = down_block(channels, c, norm=False)
        res = size // 2
        if attention and res == attn_res:
            layers.append(SelfAttention(c))
        while res > max(4, d_patch):
            c_next = dcgan_width(d_width, size, res // 2)
            layers += down_block(c, c_next, norm=d_batchnorm)
            c, res = c_next, res // 2
            if attention and res == attn_res:
                layers.append(SelfAttention(c))
        if d_mbstd:  # only when on: the default layer indices (state_dict keys) stay
            layers.append(MinibatchStd())
        kernel, pad = (3, 1) if d_patch else (4, 0)  # a score per position, or one in all
        layers.append(nn.Conv2d(c + int(d_mbstd), 1, kernel, 1, pad))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.flatten(1).mean(dim=1) if self.d_patch else out.view(x.shape[0])
