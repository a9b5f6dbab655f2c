from .env import env_url

CLICKHOUSE_URL = env_url(
    "CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/smarteros", schemes=("clickhouse",)
)
# The console and operations read through this (a read-only user in production); queries also
# run with readonly=1 whatever the user.
CLICKHOUSE_READ_URL = env_url("CLICKHOUSE_READ_URL", CLICKHOUSE_URL, schemes=("clickhouse",))
# Days of telemetry kept per plan; a tenant's own retention_days overrides it.
TELEMETRY_RETENTION_DAYS = {"free": 7, "pro": 30, "enterprise": 90}
