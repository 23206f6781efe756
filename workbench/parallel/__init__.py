"""Parallel evaluation on local processes or a Dask cluster (one executor choice for all)."""
from .executors import executor, worker_count
from .sweep import SweepResult, sweep

__all__ = ["SweepResult", "executor", "sweep", "worker_count"]
