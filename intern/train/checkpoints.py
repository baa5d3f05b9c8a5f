"""Which of a trainer's ``checkpoint-N`` folders can be resumed: a leaf (no ML imports), for the recipes
(``sft.py``), their callbacks (``callbacks.py``: a save that cannot fit) and the stages (``stages.py``).

    found, incomplete = last_complete_checkpoint(trainer_dir(job))
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["last_complete_checkpoint"]


def last_complete_checkpoint(folder: Path) -> tuple[Path | None, list[Path]]:
    """The newest ``checkpoint-N`` under ``folder`` that was fully written, and newer ones that were not.

    The HF trainer writes ``trainer_state.json`` after the weights, optimizer, scheduler and
    RNG state; a process killed mid-save (Ctrl-C stopping the Ray cluster, a lost node)
    leaves a folder without it, or with it cut short. Resuming from such a folder fails, so
    it is passed over for the one before.
    """
    steps = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        suffix = path.name.removeprefix("checkpoint-")
        if path.is_dir() and suffix.isdigit():
            steps.append((int(suffix), path))
    incomplete: list[Path] = []
    for _, path in sorted(steps, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())["global_step"]
            return path, incomplete
        except (OSError, ValueError, KeyError):
            incomplete.append(path)
    return None, incomplete
