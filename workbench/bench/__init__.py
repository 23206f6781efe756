"""Benchmarks runnable from the package: ``python -m workbench.bench bolib``."""
