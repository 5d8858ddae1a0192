"""Image-quality metrics (FID, KID, IS, precision/recall) through torch-fidelity.

The metrics are torch-fidelity's own (feature extraction, FID statistics, KID, IS, PRC
functions); usgan only feeds them: grayscale images tiled to 3 channels as uint8, the fakes
generated in batches (no PNGs), and the real images' features cached as safetensors (keyed by
data, class, preprocessing, extractor and the sha256 of its weights), so a second evaluation
against the same real data embeds only the fakes. On the same two folders the numbers equal
``torch_fidelity.calculate_metrics(input1=FAKE, input2=REAL)`` (tested).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .errors import ConfigError, DataError, UsganError
from .io import FileFormatError, read_safetensors, save_safetensors, sha256_file

METRICS = ("fid", "kid", "is", "prc")
INCEPTION = "inception-v3-compat"
WEIGHTS_ENV = "USGAN_INCEPTION_WEIGHTS"
MIN_IMAGES = {"fid": 2, "kid": 2, "is": 2, "prc": 4}  # prc: more than its 3 neighbours


class MetricsError(UsganError):
    """The metrics cannot be computed as asked."""


class TensorImages(Dataset):
    """uint8 ``[N, 1 or 3, H, W]`` as torch-fidelity input: 3-channel uint8 per item."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"images must be uint8 [N, 1 or 3, H, W], got {images.dtype} "
                            f"{list(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


@dataclass
class Metric:
    """One number (with its spread where the metric has one), or why there is none."""

    value: float | None
    std: float | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "std": self.std, "unavailable": self.reason}

    def __str__(self) -> str:
        if self.value is None:
            return f"n/a ({self.reason})"
        return f"{self.value:.4g}" + (f" ± {self.std:.2g}" if self.std is not None else "")


def weights_path(path: str | Path | None) -> Path | None:
    """``--inception-weights`` or $USGAN_INCEPTION_WEIGHTS, checked to be a plain state dict
    of tensors (never unpickled beyond tensors); None lets torch-fidelity download."""
    raw = path or os.environ.get(WEIGHTS_ENV)
    if not raw:
        return None
    p = Path(raw).expanduser()
    if not p.is_file():
        raise MetricsError(f"Inception weights {p}: no such file")
    load_inception_state(p)
    return p


def load_inception_state(path: Path) -> dict[str, torch.Tensor]:
    """The Inception state dict at ``path``, read by torch's restricted loader
    (``weights_only=True``: tensors and plain containers, nothing else is unpickled)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the restricted unpickler refuses anything but tensors
        raise MetricsError(f"Inception weights {path}: not a plain state dict of tensors "
                           f"({type(err).__name__})") from None
    if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
        raise MetricsError(f"Inception weights {path}: not an Inception-v3 state dict (torch-"
                           "fidelity's inception-v3-compat keys are missing)")
    return state


@contextlib.contextmanager
def _weights_only() -> Iterator[None]:
    """While torch-fidelity builds its extractor, torch's own switch forces its loader into
    ``weights_only=True`` (torch-fidelity asks for ``False``): tensors only, nothing else is
    unpickled. The environment is put back after."""
    keys = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved = {k: os.environ.pop(k, None) for k in keys}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


@dataclass
class Extractor:
    """A torch-fidelity feature extractor with the layers the asked metrics need."""

    name: str
    weights: Path | None
    layers: dict[str, str]
    module: Any
    kwargs: dict[str, Any]

    @classmethod
    def create(cls, metrics: Sequence[str], name: str = INCEPTION,
               weights: Path | None = None) -> Extractor:
        from torch_fidelity.utils import create_feature_extractor, resolve_feature_layer_for_metric

        cuda = torch.cuda.is_available()
        kw: dict[str, Any] = {"feature_extractor": name, "cuda": cuda, "verbose": False,
                              "feature_extractor_weights_path": str(weights) if weights else None}
        layers = {m: resolve_feature_layer_for_metric("isc" if m == "is" else m, **kw)
                  for m in metrics}
        try:
            with _weights_only():  # nothing is unpickled (docs/robustness.md)
                module = create_feature_extractor(name, sorted(set(layers.values())), **kw)
        except (OSError, RuntimeError) as err:  # the download fails offline
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise MetricsError(
                f"could not load the {name} weights ({first}); without internet pass "
                f"--inception-weights PATH or set {WEIGHTS_ENV} (docs/evaluation.md)") from None
        return cls(name, weights, layers, module, kw)

    def key(self) -> str:
        """What identifies this extractor's features: name, layers and weights' sha256."""
        digest = sha256_file(self.weights) if self.weights else "downloaded"
        return f"{self.name}|{sorted(set(self.layers.values()))}|{digest}"

    def features(self, data: Dataset) -> dict[str, torch.Tensor]:
        from torch_fidelity.utils import get_featuresdict_from_dataset

        return get_featuresdict_from_dataset(data, self.module, 64, self.kwargs["cuda"],
                                             True, False)


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, C, h, w]`` -> uint8 ``[N, C, size, size]``, bilinear without antialiasing
    (as a Stage-II's input is upsampled): how a Stage-I is scored at its Stage-II's size,
    against the same real images."""
    up = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                         align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8)


def real_key(fingerprint: str, cls: str, size: int) -> str:
    """What identifies a set of real images for the feature cache: the data's fingerprint,
    the class, the size and the preprocessing version."""
    from .data.preprocess import VERSION

    return f"{fingerprint}|{cls}|{size}|preprocess-v{VERSION}"


def real_features(extractor: Extractor, data: Dataset, key: str | None,
                  cache_dir: Path | None) -> dict[str, torch.Tensor]:
    """Features of the real images, from the cache when ``key`` was seen with this
    extractor (safetensors, no pickle), else computed and cached."""
    if key is None or cache_dir is None:
        return extractor.features(data)
    name = hashlib.blake2b(f"{key}|{extractor.key()}".encode(), digest_size=16).hexdigest()
    path = cache_dir / f"{name}.safetensors"
    if path.is_file():
        try:
            return read_safetensors(path)[0]
        except FileFormatError:
            pass  # a damaged cache file is recomputed
    feats = extractor.features(data)
    try:
        save_safetensors(path, feats, {"key": key, "extractor": extractor.key()})
    except FileFormatError:
        pass  # a read-only cache costs time, not correctness
    return feats


def check_counts(metrics: Sequence[str], fake: Dataset, real: Dataset | None) -> None:
    """Known metrics and enough images for each, else a one-line error."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    for m in metrics:
        for what, data in (("generated", fake), ("real", real)):
            if data is not None and len(data) < MIN_IMAGES[m]:
                raise DataError(f"{m.upper()} needs at least {MIN_IMAGES[m]} {what} images; "
                                f"got {len(data)}")


def features_of(extractor: Extractor, fake: Dataset, real: Dataset | None,
                metrics: Sequence[str], real_key: str | None = None,
                cache_dir: Path | None = None) -> tuple[dict[str, torch.Tensor],
                                                        dict[str, torch.Tensor] | None]:
    """Features of the fakes and (cached) of the reals; no reals when only IS is asked."""
    f1 = extractor.features(fake)
    f2 = (real_features(extractor, real, real_key, cache_dir)
          if real is not None and set(metrics) - {"is"} else None)
    return f1, f2


def compute(extractor: Extractor, fake: Dataset, real: Dataset | None, metrics: Sequence[str],
            real_key: str | None = None, cache_dir: Path | None = None,
            kid_subset_size: int = 1000) -> dict[str, Metric]:
    """The asked metrics of ``fake`` against ``real`` (IS needs only ``fake``)."""
    check_counts(metrics, fake, real)
    f1, f2 = features_of(extractor, fake, real, metrics, real_key, cache_dir)
    return from_features(extractor, f1, f2, metrics, kid_subset_size)


def from_features(extractor: Extractor, f1: dict[str, torch.Tensor],
                  f2: dict[str, torch.Tensor] | None, metrics: Sequence[str],
                  kid_subset_size: int = 1000) -> dict[str, Metric]:
    """The metrics from features already extracted (fake ``f1``, real ``f2``), e.g. when the
    same features also feed the memorization audit."""
    n = min(len(t) for f in (f1, f2) if f is not None for t in f.values())
    kw = {**extractor.kwargs, "kid_subset_size": min(kid_subset_size, n)}
    return _metrics(extractor, f1, f2, metrics, kw)


def _metrics(extractor: Extractor, f1: dict[str, torch.Tensor],
             f2: dict[str, torch.Tensor] | None, metrics: Sequence[str],
             kw: dict[str, Any]) -> dict[str, Metric]:
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_featuresdict_to_metric
    from torch_fidelity.metric_kid import kid_featuresdict_to_metric
    from torch_fidelity.metric_prc import prc_featuresdict_to_metric

    layer, out = extractor.layers, {}
    if "fid" in metrics:
        stats = [fid_featuresdict_to_statistics(f, layer["fid"]) for f in (f1, f2)]
        out["fid"] = _number(fid_statistics_to_metric(*stats, False)["frechet_inception_distance"])
    if "kid" in metrics:
        kid = kid_featuresdict_to_metric(f1, f2, layer["kid"], **kw)
        whole = kw["kid_subset_size"] >= max(len(t) for f in (f1, f2) for t in f.values())
        # subsets that take every image of both sets are all alike: their spread says nothing
        out["kid"] = _number(kid["kernel_inception_distance_mean"],
                             None if whole else kid["kernel_inception_distance_std"])
    if "is" in metrics:
        isc = isc_featuresdict_to_metric(f1, layer["is"], **kw)
        out["is"] = _number(isc["inception_score_mean"], isc["inception_score_std"],
                            "the classifier head of these Inception weights is NaN "
                            "(features-only weights); IS needs the full network")
    if "prc" in metrics:
        prc = prc_featuresdict_to_metric(f1, f2, layer["prc"], **kw)
        for key, name in (("precision", "precision"), ("recall", "recall")):
            out[name] = _number(prc[key])
    return out


def _number(value: Any, std: Any = None, reason: str = "") -> Metric:
    v = float(value)
    if not math.isfinite(v):
        return Metric(None, None, reason or f"the result is {v}")
    return Metric(v, float(std) if std is not None else None)


def features_cache_dir() -> Path:
    """Where the real images' features are cached: ``$USGAN_CACHE/features``."""
    from .data.cache import default_cache_dir

    return default_cache_dir().parent / "features"


def stack_images(data: Dataset) -> torch.Tensor:
    """Every image of a torch-fidelity input as one uint8 tensor (one channel where gray)."""
    images = torch.stack([data[i] for i in range(len(data))])
    gray = (images[:, :1] == images[:, 1:2]).all() and (images[:, :1] == images[:, 2:]).all()
    return images[:, :1] if gray else images


def evaluate(extractor: Extractor, fake: Dataset, real: Dataset, metrics: Sequence[str],
             real_key: str | None = None, audit: bool = False,
             trained_on: Dataset | None = None) -> dict[str, Any]:
    """The eval row of one class of one source, as ``usgan eval`` (eval.json) and
    ``--eval-every`` record it: each metric as ``{value, std, unavailable}``, the image counts
    and size, the diversity against the real images (pixels at 64 px; the feature space of
    FID/KID where extracted), the power by scale against theirs (`spectrum`) and, with
    ``audit``, the memorization audit: against ``trained_on`` when the real images are held
    out (what G could have copied), else against them. The real images' features are cached
    under ``real_key`` (`features_cache_dir`)."""
    from .audit import audit_images, pixels
    from .diversity import diversity
    from .spectrum import spectrum

    names = [*metrics, "fid"] if audit else list(metrics)
    f1, f2 = features_of(extractor, fake, real, names, real_key, features_cache_dir())
    row: dict[str, Any] = {k: v.as_json() for k, v in
                           from_features(extractor, f1, f2, metrics).items()}
    fakes, reals = stack_images(fake), stack_images(real)
    row.update(n_fake=len(fakes), n_real=len(reals), size=int(fakes.shape[-1]))
    spread = [diversity(pixels(fakes, 64), pixels(reals, 64), "pixels 64x64")]
    layer = next((extractor.layers[m] for m in ("fid", "kid", "prc") if m in extractor.layers),
                 None)
    if f2 is not None and layer is not None:
        spread.append(diversity(f1[layer], f2[layer], f"{extractor.name} {layer}"))
    row["diversity"] = [d.as_json() for d in spread]
    row["spectrum"] = spectrum(fakes, reals).as_json()
    if audit:
        fid = extractor.layers["fid"]
        copied, copied_feats = reals, f2[fid]
        if trained_on is not None:
            copied, copied_feats = stack_images(trained_on), extractor.features(trained_on)[fid]
        reports = audit_images(fakes, copied, 64,
                               (f1[fid], copied_feats, f"{extractor.name} {fid}"))
        row["audit"] = [r.as_json() for r in reports]
    return row
