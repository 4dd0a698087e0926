"""Side-by-side benchmarks against other libraries (scripts: ``python benchmarks/bench_*.py``)."""
