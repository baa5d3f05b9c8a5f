"""Thread safety for the ML stack when several branches share one process.

In Ray each role has its own process; in-process (tests, ``use_ray=False``) branches are
threads, and two pieces of transformers are not thread-safe:

- transformers and trl resolve names lazily; two threads importing them for the first
  time at once can see a half-initialized module ("cannot import name 'SFTConfig'").
  :func:`ml_stack` makes the first import happen in one thread only.
- ``from_pretrained`` patches torch globally while it builds a model on the meta device;
  two concurrent loads corrupt each other ("Cannot copy out of meta tensor"), and
  ``datasets``' shared progress bars race ("'tqdm' object has no attribute '_lock'").
  Hold :data:`LIBRARY_LOCK` around model loads, trainer set-up and dataset loads.
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()
LIBRARY_LOCK = threading.Lock()
_DONE = False


def ml_stack() -> None:
    """Import torch, transformers, trl and peft (fully) exactly once per process."""
    global _DONE
    if _DONE:
        return
    with _LOCK:
        if _DONE:
            return
        import peft  # noqa: F401
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
        from trl import SFTConfig, SFTTrainer  # noqa: F401

        _DONE = True
