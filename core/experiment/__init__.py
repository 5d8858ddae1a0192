"""usgan.core.experiment: the paper's experiments (Table 2: classification with synthetic data).

`run_classify` trains and tests the classifiers; `report.render_markdown` writes the table.
"""

from .classify import (
    PRESETS,
    ClassifyOptions,
    Preset,
    SyntheticSource,
    run_classify,
    source_from,
)
from .report import classification_metrics, paired_p, render_markdown, report_header

__all__ = [
    "PRESETS",
    "ClassifyOptions",
    "Preset",
    "SyntheticSource",
    "classification_metrics",
    "paired_p",
    "render_markdown",
    "report_header",
    "run_classify",
    "source_from",
]
