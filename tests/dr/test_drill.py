"""`manage.py dr_drill`, small: it starts services of its own, seeds, backs up, restores into
empty services, verifies every count and checksum, proves a restored tenant works and ends with
the RTO."""

from __future__ import annotations

import re
import subprocess
import sys

from smarteros.infra.kafka import admin_client
from tests.processes import ROOT


def test_the_drill_restores_verifies_and_ends_with_the_rto() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "dr_drill", "--messages=2000", "--tenants=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout
    assert result.returncode == 0, (output[-3000:], result.stderr[-3000:])
    lines = output.strip().splitlines()
    last = re.fullmatch(r"rto_seconds: (\d+(?:\.\d+)?)", lines[-1])
    assert last, lines[-5:]
    assert 0 < float(last.group(1)) <= 60
    # dr_restore's own verification, part by part.
    assert "kafka: every partition's count and content checksum match the backup" in output
    assert re.search(r"postgres: \d+ rows in \d+ tables match the backup", output)
    assert "clickhouse: operation_calls: 1000 rows, checksum matches" in output
    assert "vault: 2 transit keys at their versions" in output
    from telemetry.schema import MIGRATIONS

    clickhouse_rows = 1000 + len(MIGRATIONS)  # the calls, and one row per applied migration
    assert re.search(
        rf"verified: \d+ database rows, 2000 records of \d+ topics, {clickhouse_rows} "
        r"ClickHouse rows, 2 Transit keys: counts and checksums match",
        output,
    )
    for slug in ("drill1", "drill2"):
        assert (
            f"check: {slug}: MCP tenant_get_tenant and REST answer with its API key, the old "
            "delivery is a duplicate, a new signed delivery is accepted"
        ) in output
    # Everything happened on the drill's own services: the shared broker never saw its tenants.
    shared = admin_client().list_topics(timeout=10).topics
    assert not [name for name in shared if name.startswith(("drill1.", "drill2."))]
