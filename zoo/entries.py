"""The built-in zoo index: the six configurations of the paper's Table 1.

Registered through the ``register_zoo_entries`` hook like any plugin's entries. None has been
published yet (no revision, no sha256s): `usgan zoo list` says so, and `usgan zoo build`
followed by `usgan zoo push` is how they will be (docs/zoo.md).
"""

from __future__ import annotations

from collections.abc import Callable

from usgan.core import hookimpl
from usgan.core.stacking import DEFAULT_STAGE2

from .index import ZooEntry

ORG = "usgan"  # the Hub organisation the official weights are meant for
TABLE_1 = (("dcgan", "DCGAN"), ("dcgan-sn", "DCGAN+SN"), ("dcgan-sn-sa", "DCGAN+SN+SA"))


def builtin_entries() -> list[ZooEntry]:
    """Stage-I alone and Stage-I + the built-in Stage-II, for each Stage-I of Table 1."""
    out = []
    for stage1, label in TABLE_1:
        for stage2 in (None, DEFAULT_STAGE2):
            name = f"{stage1}-stage2" if stage2 else stage1
            out.append(ZooEntry(
                name=name, stage1=stage1, stage2=stage2, repo=f"{ORG}/{name}",
                description=f"{label}{' + Stage-II' if stage2 else ''} (Che et al., Table 1)",
            ))
    return out


@hookimpl
def register_zoo_entries(register: Callable[[ZooEntry], None]) -> None:
    """The paper's six configurations."""
    for entry in builtin_entries():
        register(entry)
