"""Training data: decontamination against eval items and the SFT dataset builder.

Usable without Ray::

    from intern.data import build_sft_dataset, find_overlaps

`intern.data.decontam` finds training rows that contain eval items (word n-gram
containment); `intern.data.build` generates a benchmark's train stream in TRL's
prompt-completion format, removes contaminated rows, writes parquet plus a
manifest, and audits the written file.
"""

from intern.data.build import (
    COLUMNS,
    DatasetRef,
    audit_dataset,
    build_sft_dataset,
    read_sft_rows,
    row_text,
)
from intern.data.decontam import Overlap, find_overlaps, ngrams, normalize

__all__ = [
    "COLUMNS",
    "DatasetRef",
    "Overlap",
    "audit_dataset",
    "build_sft_dataset",
    "find_overlaps",
    "ngrams",
    "normalize",
    "read_sft_rows",
    "row_text",
]
