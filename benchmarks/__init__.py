"""Benchmarks against PyTorch: run with ``python -m benchmarks.<name>``; results in BENCHMARKS.md."""
