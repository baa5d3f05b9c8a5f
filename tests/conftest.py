"""Shared fixtures: one real local Ray cluster per test session, offline hub and research-tool settings."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("INTERN_OFFLINE", "1")  # the research tools never reach the internet; loopback tests unset it


@pytest.fixture(scope="session")
def ray_cluster():
    """A real embedded Ray cluster (2 CPUs) of this test session; yields its GCS address."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, namespace="intern", include_dashboard=True, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
