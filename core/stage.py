"""`Stage`: the one way to name a stage (registry kinds, run-directory folders, CLI options).

``Stage.parse`` accepts every spelling a user or an old file may use: ``1``, ``"1"``,
``"stage1"``, ``"I"``, ``"Stage-I"`` (and the same for Stage-II). The value is the string used
in files and JSON (``"stage1"``), so a `Stage` compares equal to it.
"""

from __future__ import annotations

from enum import Enum

from .errors import UsganError


class Stage(str, Enum):
    """Stage-I (noise -> mid-resolution image) or Stage-II (refinement to full size)."""

    ONE = "stage1"
    TWO = "stage2"

    @property
    def number(self) -> int:
        """1 or 2."""
        return 1 if self is Stage.ONE else 2

    @property
    def label(self) -> str:
        """``"Stage-I"`` or ``"Stage-II"`` (for messages)."""
        return "Stage-I" if self is Stage.ONE else "Stage-II"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, value: Stage | int | str) -> Stage:
        """The stage named by ``value``; anything else is a one-line `UsganError`."""
        if isinstance(value, Stage):
            return value
        text = str(value).strip().lower().replace("-", "").replace("_", "")
        for stage in cls:
            spellings = {stage.value, str(stage.number), stage.label.lower().replace("-", ""),
                         "i" * stage.number}
            if text in spellings:
                return stage
        raise UsganError(f"unknown stage {value!r}; use 1 (Stage-I) or 2 (Stage-II)")


STAGES: tuple[Stage, ...] = (Stage.ONE, Stage.TWO)
