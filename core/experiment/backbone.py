"""The classifier network of the classification experiment: a timm backbone with one input
channel, randomly initialised or from ImageNet weights found offline (a safetensors file or
the local Hugging Face cache; never a pickle)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..io import FileFormatError, read_safetensors, refuse_pickle


def check_backbone(name: str) -> None:
    """A `ConfigError` naming a few timm models when ``name`` is not one."""
    import timm

    if not timm.is_model(name):
        from difflib import get_close_matches

        near = get_close_matches(name, timm.list_models(), n=5, cutoff=0.5) or [
            "efficientnet_b0", "resnet18", "mobilenetv3_small_100"]
        raise ConfigError(f"unknown backbone {name!r}; timm has e.g. {', '.join(near)}")


def _cached_weights(backbone: str) -> Path | None:
    """timm's pretrained safetensors in the local Hugging Face cache, if any (no network)."""
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache

        repo = timm.models.get_pretrained_cfg(backbone).hf_hub_id
        hit = try_to_load_from_cache(repo, "model.safetensors") if repo else None
    except Exception:  # any lookup failure just means: not cached
        return None
    return Path(hit) if isinstance(hit, str) else None


def _load_imagenet(model: nn.Module, path: Path) -> int:
    """Load ImageNet weights into a 1-channel model: RGB stem summed over channels, tensors of
    other shapes (the head) skipped. Returns how many tensors were loaded."""
    refuse_pickle(path)
    tensors, _ = read_safetensors(path)
    own = model.state_dict()
    keep = {}
    for k, v in tensors.items():
        if k in own and v.ndim == 4 and v.shape[1] == 3 and own[k].shape[1] == 1:
            v = v.sum(dim=1, keepdim=True)
        if k in own and own[k].shape == v.shape:
            keep[k] = v
    if not keep:
        raise ConfigError(f"{path}: no tensor matches the backbone's parameters")
    model.load_state_dict(keep, strict=False)
    return len(keep)


def check_weights(path: Path) -> None:
    """``--backbone-weights`` is an existing safetensors file (never a pickle)."""
    try:
        refuse_pickle(path)
    except FileFormatError as err:
        raise ConfigError(str(err)) from None
    if not path.is_file():
        raise ConfigError(f"--backbone-weights {path} does not exist")


def make_model(backbone: str, n_classes: int, seed: int, pretrained: bool = False,
               weights: Path | None = None) -> tuple[nn.Module, str]:
    """The 1-channel classifier (seeded) and a description of its initialization: ImageNet
    weights from ``weights`` or the local cache when ``pretrained``, else random."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(backbone, pretrained=False, num_classes=n_classes, in_chans=1)
    if not pretrained:
        return model, "random init"
    path = weights or _cached_weights(backbone)
    if path is None:
        return model, "random init (ImageNet weights unavailable offline)"
    try:
        n = _load_imagenet(model, Path(path))
    except FileFormatError as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    return model, f"ImageNet weights from {path} ({n} tensors)"
