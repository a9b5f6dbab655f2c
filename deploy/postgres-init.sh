#!/bin/sh
# Creates the two roles the application logs in as:
# - smarteros: owns the schema, runs migrations and every tenant's requests; not a superuser and
#   not BYPASSRLS, so row-level security holds for it.
# - smarteros_platform: BYPASSRLS, used only inside dangerously_unscoped() (platform-wide work).
#   smarteros is never made a member of it, so no application session can SET ROLE to it.
#   Its table privileges are granted by the migrations (tenants 0006), now and for future tables.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE smarteros LOGIN PASSWORD '${APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS;
CREATE ROLE smarteros_platform LOGIN PASSWORD '${PLATFORM_PASSWORD}'
  NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
ALTER DATABASE smarteros OWNER TO smarteros;
ALTER SCHEMA public OWNER TO smarteros;
SQL
