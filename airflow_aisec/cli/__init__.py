"""The ``aisec`` command line: the same core code as the operators, without a running Airflow."""
