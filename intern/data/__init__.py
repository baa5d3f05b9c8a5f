"""Training data: load, map, deduplicate, synthesize, decontaminate, write with a manifest.

Usable without Ray::

    from intern.data import build_sft_dataset, build_from_source, find_contamination

`intern.data.decontam` finds training rows that contain an eval item's question or
answer (word n-gram containment, each checked separately); `intern.data.build`
generates a benchmark's train stream in TRL's prompt-completion format (or GRPO
prompt + item rows) and writes every dataset through one writer that removes
contaminated rows, writes parquet plus a manifest and audits the written file;
`intern.data.pipeline` turns a local or Hub dataset in any schema into those rows
(`sources` -> `mapping` -> `dedup` -> decontamination -> write); `intern.data.synth`
has a teacher model write worked solutions and keeps the verified ones.
"""

from intern.data.build import (
    COLUMNS,
    GRPO_COLUMNS,
    DatasetRef,
    audit_dataset,
    build_grpo_dataset,
    build_sft_dataset,
    read_grpo_rows,
    read_sft_rows,
    row_text,
    write_dataset,
)
from intern.data.decontam import Contamination, Overlap, find_contamination, find_overlaps, ngrams, normalize
from intern.data.pipeline import build_from_source
from intern.data.synth import build_synthetic_dataset, synthesize

__all__ = [
    "COLUMNS",
    "GRPO_COLUMNS",
    "Contamination",
    "DatasetRef",
    "Overlap",
    "audit_dataset",
    "build_from_source",
    "build_grpo_dataset",
    "build_sft_dataset",
    "build_synthetic_dataset",
    "find_contamination",
    "find_overlaps",
    "ngrams",
    "normalize",
    "read_grpo_rows",
    "read_sft_rows",
    "row_text",
    "synthesize",
    "write_dataset",
]
