"""usgan-example-plugin: registers the Stage-I GAN ``upconv-dcgan`` and the Stage-II GAN
``upconv-refiner``.

A DCGAN variant whose generator grows the image with nearest-neighbour upsampling followed
by a 3x3 convolution instead of strided transposed convolutions. A transposed conv with
kernel 4 and stride 2 covers output pixels unevenly, which shows up as a checkerboard
pattern; resize-then-convolve has no such overlap problem (Odena et al., Distill 2016).

This package uses only the public ``usgan.core`` API, as any third-party plugin should.
"""

from __future__ import annotations

from usgan.core import GANSpec, hookimpl

from .networks import UpconvDiscriminator, UpconvGenerator
from .refiner import RefinerGenerator, refiner_discriminator

__all__ = [
    "DEFAULTS",
    "REFINER_DEFAULTS",
    "RefinerGenerator",
    "UpconvDiscriminator",
    "UpconvGenerator",
    "register_stage1",
    "register_stage2",
]

# JSON-able defaults; every key may be overridden by name when the network is built.
DEFAULTS = {
    "z_dim": 100,
    "channels": 1,
    "size": 64,
    "g_width": 64,
    "d_width": 64,
    "upsample": "nearest",
}

# A Stage-II must take in_size, in_channels and out_channels: usgan sets them from the
# Stage-I it stacks on (the registry refuses a Stage-II without them).
REFINER_DEFAULTS = {
    "in_channels": 1,
    "in_size": 64,
    "out_channels": 1,
    "out_size": 256,
    "z_dim": 32,
    "width": 64,
    "d_width": 32,
}


@hookimpl
def register_stage1(register):  # type: ignore[no-untyped-def]
    """Called once by usgan when it builds its registry."""
    register(GANSpec(
        name="upconv-dcgan",
        generator=UpconvGenerator,
        discriminator=UpconvDiscriminator,
        defaults=DEFAULTS,
        description="DCGAN with nearest-neighbour upsample + 3x3 conv in G (no checkerboard)",
    ))


@hookimpl
def register_stage2(register):  # type: ignore[no-untyped-def]
    """Called once by usgan, after every plugin's register_stage1."""
    register(GANSpec(
        name="upconv-refiner",
        generator=RefinerGenerator,
        discriminator=refiner_discriminator,
        defaults=REFINER_DEFAULTS,
        description="Stage-II: upsampled Stage-I image + learned correction (resize-conv)",
    ))
