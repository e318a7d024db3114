"""Benchmarks (run as scripts; see the README, Performance)."""
