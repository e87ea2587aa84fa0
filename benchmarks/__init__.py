"""Benchmarks: speed and quality figures, run by hand, never as timed tests."""
