"""Training recipes (plain functions over a job spec) and their Ray Train entry."""

from intern.train.sft import SFTJob, SFTResult, run_sft

__all__ = ["SFTJob", "SFTResult", "run_sft"]
