-- Run once by the postgres image on an empty data volume: POSTGRES_DB (k2_catalog, the Iceberg SQL catalog)
-- exists already; the Dagster instance gets a database of its own, owned by the same user.
CREATE DATABASE dagster;
