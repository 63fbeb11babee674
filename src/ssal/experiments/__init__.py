"""Benchmarks defined as data (``ssal benchmark SPEC``): specs, folds, scoring, runner, report."""

from .runner import run_benchmark
from .spec import BenchmarkSpec, load_spec, shipped_specs

__all__ = ["run_benchmark", "load_spec", "shipped_specs", "BenchmarkSpec"]
