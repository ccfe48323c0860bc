"""Airflow operators: thin adapters over the core modules."""
