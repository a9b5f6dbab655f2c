from .env import env_url

CLICKHOUSE_URL = env_url(
    "CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/smarteros", schemes=("clickhouse",)
)
