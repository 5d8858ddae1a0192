"""usgan-example-plugin: registers the Stage-I GAN ``upconv-dcgan``.

A DCGAN variant whose generator grows the image with nearest-neighbour upsampling followed
by a 3x3 convolution instead of strided transposed convolutions. A transposed conv with
kernel 4 and stride 2 covers output pixels unevenly, which shows up as a checkerboard
pattern; resize-then-convolve has no such overlap problem (Odena et al., Distill 2016).

This package uses only the public ``usgan.core`` API, as any third-party plugin should.
"""

from __future__ import annotations

from usgan.core import GANSpec, hookimpl

from .networks import UpconvDiscriminator, UpconvGenerator

__all__ = ["DEFAULTS", "UpconvDiscriminator", "UpconvGenerator", "register_stage1"]

# JSON-able defaults; every key may be overridden by name when the network is built.
DEFAULTS = {
    "z_dim": 100,
    "channels": 1,
    "size": 64,
    "g_width": 64,
    "d_width": 64,
    "upsample": "nearest",
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
