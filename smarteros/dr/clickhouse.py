"""ClickHouse: each table of the application's database as its CREATE statement and its rows in
the Native format (over the HTTP interface, streamed to and from files), with row counts and an
order-independent checksum of the rows (sum of cityHash64 over every column), which the restore
recomputes on the target.

The statements run on Debian's ClickHouse 18.16 and on current releases.
"""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings

from smarteros.dr.common import DrError, Progress
from smarteros.infra.clickhouse import clickhouse_client, connection_params

FOLDER = "clickhouse"


def http_url(configured: str | None = None) -> str:
    """The HTTP interface: DR_CLICKHOUSE_HTTP_URL, else CLICKHOUSE_URL's host on port 8123."""
    if configured:
        return configured.rstrip("/")
    params = connection_params(settings.CLICKHOUSE_URL)
    credentials = urllib.parse.quote(str(params["user"]), safe="")
    if params["password"]:
        credentials += ":" + urllib.parse.quote(str(params["password"]), safe="")
    return f"http://{credentials}@{params['host']}:8123"


def _request(base: str, query: str, body: Any = None) -> urllib.request.Request:
    parsed = urllib.parse.urlparse(base)
    netloc = parsed.hostname or "127.0.0.1"
    if parsed.port:
        netloc += f":{parsed.port}"
    headers = {"X-ClickHouse-User": urllib.parse.unquote(parsed.username or "default")}
    if parsed.password:
        headers["X-ClickHouse-Key"] = urllib.parse.unquote(parsed.password)
    url = f"{parsed.scheme}://{netloc}/?" + urllib.parse.urlencode({"query": query})
    return urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")


def _stream_to(base: str, query: str, path: Path) -> None:
    try:
        with (
            urllib.request.urlopen(_request(base, query), timeout=300) as response,
            path.open("wb") as file,
        ):
            shutil.copyfileobj(response, file, 1 << 20)
    except urllib.error.HTTPError as exc:
        raise DrError(
            f"clickhouse: {query[:80]}: {exc.read().decode(errors='replace')[:500]}"
        ) from None


def _stream_from(base: str, query: str, path: Path) -> None:
    with path.open("rb") as file:
        request = _request(base, query, body=file)
        request.add_header("Content-Length", str(path.stat().st_size))
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DrError(
                f"clickhouse: {query[:80]}: {exc.read().decode(errors='replace')[:500]}"
            ) from None


def _fingerprint(client: Any, database: str, table: str) -> tuple[int, int]:
    """(rows, sum of cityHash64 of every row): equal whatever order the parts come in."""
    columns = [
        row[0]
        for row in client.execute(
            "SELECT name FROM system.columns WHERE database = %(d)s AND table = %(t)s",
            {"d": database, "t": table},
        )
    ]
    hashed = ", ".join(f"`{c}`" for c in columns)
    row = client.execute(f"SELECT count(), sum(cityHash64({hashed})) FROM `{database}`.`{table}`")
    return int(row[0][0]), int(row[0][1] or 0)


def _tables(client: Any, database: str) -> list[str]:
    return [
        row[0]
        for row in client.execute(
            "SELECT name FROM system.tables WHERE database = %(d)s ORDER BY name", {"d": database}
        )
    ]


def clickhouse_backup(directory: Path, *, http: str, progress: Progress) -> dict[str, Any]:
    """Every table of the configured database: statement, Native rows, count and checksum."""
    database = str(connection_params(settings.CLICKHOUSE_URL)["database"])
    (directory / FOLDER).mkdir(parents=True, exist_ok=True)
    client = clickhouse_client(timeout=30)
    tables: dict[str, Any] = {}
    try:
        version = client.execute("SELECT version()")[0][0]
        for table in _tables(client, database):
            statement = client.execute(f"SHOW CREATE TABLE `{database}`.`{table}`")[0][0]
            rows, checksum = _fingerprint(client, database, table)
            data = directory / FOLDER / f"{table}.native"
            _stream_to(http, f"SELECT * FROM `{database}`.`{table}` FORMAT Native", data)
            tables[table] = {
                "create": statement,
                "file": f"{FOLDER}/{table}.native",
                "rows": rows,
                "checksum": str(checksum),
            }
            progress(f"clickhouse: {table}: {rows} rows")
    finally:
        client.disconnect()
    return {
        "database": database,
        "server_version": version,
        "tables": tables,
        "rows": sum(t["rows"] for t in tables.values()),
    }


def _retarget(statement: str, source: str, target: str, table: str) -> str:
    """The CREATE statement naming the target's database instead of the source's."""
    pattern = rf"^CREATE TABLE\s+`?{re.escape(source)}`?\.`?{re.escape(table)}`?"
    return re.sub(pattern, f"CREATE TABLE `{target}`.`{table}`", statement, count=1)


def clickhouse_target_state() -> str:
    """'' when the configured database is absent or its tables hold no rows."""
    database = str(connection_params(settings.CLICKHOUSE_URL)["database"])
    client = clickhouse_client(timeout=30, database="default")
    try:
        held = [
            table
            for table in _tables(client, database)
            if client.execute(f"SELECT count() FROM `{database}`.`{table}`")[0][0]
        ]
    finally:
        client.disconnect()
    return f"tables with rows: {', '.join(held)}" if held else ""


def clickhouse_restore(
    directory: Path, part: dict[str, Any], *, http: str, force: bool, progress: Progress
) -> int:
    """Recreate every table in the configured database and load its rows, then compare counts
    and checksums with the backup's."""
    database = str(connection_params(settings.CLICKHOUSE_URL)["database"])
    held = clickhouse_target_state()
    if held and not force:
        raise DrError(f"clickhouse: the target is not empty ({held}); use --force to replace it")
    client = clickhouse_client(timeout=30, database="default")
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        for table, info in sorted(part["tables"].items()):
            client.execute(f"DROP TABLE IF EXISTS `{database}`.`{table}`")
            client.execute(_retarget(info["create"], part["database"], database, table))
            if info["rows"]:
                _stream_from(
                    http,
                    f"INSERT INTO `{database}`.`{table}` FORMAT Native",
                    directory / info["file"],
                )
            rows, checksum = _fingerprint(client, database, table)
            if rows != info["rows"] or str(checksum) != info["checksum"]:
                raise DrError(
                    f"clickhouse: {table}: {rows} rows (checksum {checksum}) after restore, "
                    f"backup had {info['rows']} (checksum {info['checksum']})"
                )
            progress(f"clickhouse: {table}: {rows} rows, checksum matches")
    finally:
        client.disconnect()
    return int(part["rows"])
