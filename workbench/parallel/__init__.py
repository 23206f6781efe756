"""Parallel evaluation on local processes or a Dask cluster (one executor choice for all)."""
from .executors import executor, worker_count
from .multistart import multistart
from .sweep import SweepResult, sweep

__all__ = ["SweepResult", "executor", "multistart", "sweep", "worker_count"]
