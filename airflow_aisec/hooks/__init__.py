"""Airflow hooks of airflow-aisec: thin adapters from Airflow connections to the core library."""
