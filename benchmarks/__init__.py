"""Benchmarks of sb3_hypernet: speed, learning, probes, reports and the reference-implementation tools (README.md)."""
