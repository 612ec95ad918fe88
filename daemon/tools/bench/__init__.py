"""Benchmarks: ``gumbeld bench convergence`` (learning accuracy and speed)."""
