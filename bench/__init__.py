"""Benchmarks of the container policy engine (see docs/benchmarks.md and `python bench/run.py`).

Nothing here is a test: figures are measured side by side and written to bench/results/, never
asserted.
"""
