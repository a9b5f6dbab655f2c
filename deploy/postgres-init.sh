#!/bin/sh
# Creates the application role: not a superuser and not BYPASSRLS, so row-level security holds.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE smarteros LOGIN PASSWORD '${APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS;
ALTER DATABASE smarteros OWNER TO smarteros;
ALTER SCHEMA public OWNER TO smarteros;
SQL
