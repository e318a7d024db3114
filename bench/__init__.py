"""Benchmarks (run as scripts; see docs/bench.md)."""
