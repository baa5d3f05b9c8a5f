"""Shared fixtures: one real local Ray cluster per test module, offline hub and research-tool settings."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("INTERN_OFFLINE", "1")  # the research tools never reach the internet; loopback tests unset it


@pytest.fixture(scope="module")
def ray_cluster():
    """A real embedded Ray cluster (2 CPUs) for one test module; yields its GCS address.

    Per module, not per session: a Ray driver's C++ threads read the environment (``getenv``) while
    tests change it (``monkeypatch.setenv``), and glibc's environment is not thread-safe: with the
    driver alive through the unit tests the process crashed in ``getenv`` (SIGSEGV) now and then."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, namespace="intern", include_dashboard=True, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
