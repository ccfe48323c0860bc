-- Runs once, when the postgres service starts on an empty data volume (/docker-entrypoint-initdb.d).
-- The airflow-aisec audit log gets its own database next to Airflow's metadata database.
-- It is owned by POSTGRES_USER, the role this script runs as.
CREATE DATABASE aisec_audit;
