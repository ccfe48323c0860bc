"""Benchmarks of airflow_aisec: ``bench_*.py`` modules with a ``main()``, run by ``python -m benchmarks``."""
