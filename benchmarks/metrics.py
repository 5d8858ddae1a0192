"""The metrics workload: FID + KID of N generated against N real images (uint8, 1x256x256,
fixed random images: the time does not depend on what they show), one whole computation
(feature extractor loaded, both sets embedded, both metrics) per unit of work.

- reference: ``torch_fidelity.calculate_metrics`` on the two sets, no cache.
- usgan: `usgan.core.evaluation` (``Extractor.create``, ``compute``), as ``usgan eval`` runs.

Both use the shared Inception weights; torch-fidelity puts the extractor on the GPU whenever
CUDA is available, whatever ``--device`` says. FLOPs: one Inception pass counted on two
images, times the number of images.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from usgan.core.evaluation import WEIGHTS_ENV, Extractor, TensorImages, compute, weights_path

from .forms import REFERENCE, USGAN, Form, Plan, Workload
from .measure import count_flops

WEIGHTS_FILE = "inception-fid-2015-12-05-features-only.pth"
# ../shared/weights beside the repository: from the working directory, then from this file.
DEFAULT_WEIGHTS = (Path("..") / "shared" / "weights" / WEIGHTS_FILE,
                   Path(__file__).resolve().parents[2] / "shared" / "weights" / WEIGHTS_FILE)
METRICS = ("fid", "kid")
NO_WEIGHTS = (f"no Inception weights (pass --inception-weights PATH or set {WEIGHTS_ENV}; "
              "the benchmark never downloads them)")


def find_weights(path: str | Path | None) -> Path | None:
    """``--inception-weights``, $USGAN_INCEPTION_WEIGHTS, else the shared file beside the
    repository; None when there is none (a given path that is bad is an error)."""
    found = weights_path(path)
    if found is not None:
        return found
    for candidate in DEFAULT_WEIGHTS:
        if candidate.is_file():
            return weights_path(candidate)
    return None


def _images(n: int, seed: int) -> TensorImages:
    gen = torch.Generator().manual_seed(seed)
    return TensorImages(torch.randint(0, 256, (n, 1, 256, 256), generator=gen,
                                      dtype=torch.uint8))


def reference_metrics(n: int, weights: Path) -> Callable[[], Any]:
    import torch_fidelity

    fake, real = _images(n, 1), _images(n, 2)

    def run() -> dict[str, Any]:
        with warnings.catch_warnings():  # torch-fidelity's 4 loader workers on fewer cores
            warnings.filterwarnings("ignore", "This DataLoader will create", UserWarning)
            return torch_fidelity.calculate_metrics(
                input1=fake, input2=real, fid=True, kid=True, kid_subset_size=min(1000, n),
                feature_extractor_weights_path=str(weights), cuda=torch.cuda.is_available(),
                cache=False, verbose=False)

    return run


def usgan_metrics(n: int, weights: Path) -> Callable[[], Any]:
    fake, real = _images(n, 1), _images(n, 2)
    return lambda: compute(Extractor.create(list(METRICS), weights=weights), fake, real,
                           list(METRICS))


@functools.cache
def inception_flops(weights: Path, images: int) -> int:
    """FLOPs of embedding ``images`` images (one pass counted on two, scaled)."""
    ext = Extractor.create(list(METRICS), weights=weights)
    device = next(ext.module.parameters()).device
    two = torch.zeros(2, 3, 256, 256, dtype=torch.uint8, device=device)
    with torch.no_grad():
        per_two = count_flops(lambda: ext.module(two))
    return per_two * images // 2


def metrics_workload(n: int, weights: Path, plan: Plan) -> Workload:
    work = Workload("metrics", f"FID + KID, {n} vs {n} images (Inception)", "run", plan)
    flops = lambda: inception_flops(weights, 2 * n)  # noqa: E731
    work.forms = [
        Form(REFERENCE, "fp32", "NCHW", 2 * n, lambda: reference_metrics(n, weights), flops),
        Form(USGAN, "fp32", "NCHW", 2 * n, lambda: usgan_metrics(n, weights), flops),
    ]
    return work
