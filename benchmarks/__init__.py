"""Benchmark harness for attrib: each method against its peer library and its limit.

Run ``python -m benchmarks`` (or ``make bench``) from the repository root; see
``benchmarks/README.md``. Nothing in ``src/`` may import from here.
"""
