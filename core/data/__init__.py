"""usgan.core.data: data specs, loaders, preprocessing, cache, splits and the built-in phantom.

``load_dataset(spec)`` returns a `Dataset` of preprocessed uint8 images ``[N, 1, 256, 256]``;
see docs/data.md for the spec syntax, preprocessing, caching and split files.
"""

from .dataset import STAGE1_SIZE, STAGE2_SIZE, Dataset, load_dataset
from .preprocess import detect_sector, parse_crop, to_gray
from .sources import SourceIndex, load_index, parse_bins
from .spec import DataSpec, parse_spec
from .splits import load_split, make_splits, read_split, split_document, write_split

__all__ = [
    "STAGE1_SIZE",
    "STAGE2_SIZE",
    "DataSpec",
    "Dataset",
    "SourceIndex",
    "detect_sector",
    "load_dataset",
    "load_index",
    "load_split",
    "make_splits",
    "parse_bins",
    "parse_crop",
    "parse_spec",
    "read_split",
    "split_document",
    "to_gray",
    "write_split",
]
