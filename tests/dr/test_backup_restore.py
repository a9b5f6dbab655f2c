"""dr_backup's manifest, and dr_restore's refusals: a backup that does not match its manifest,
a target that is not empty; and --force, which replaces what the target holds. On a stack of
the test's own (drill.stack), never the shared services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drill.stack import LocalStack, local_stack_start
from smarteros.dr.common import file_sha256
from tests.processes import ROOT

MESSAGES = 300


def manage(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[LocalStack, Path]]:
    """A source stack with one tenant and MESSAGES records, and its dr_backup."""
    # Not under pytest's private temp folder: the database and ClickHouse accounts must reach it.
    root = Path(tempfile.mkdtemp(prefix="smarteros-dr-test-"))
    root.chmod(0o755)
    stack = local_stack_start(root / "stack", with_database=True, progress=lambda line: None)
    try:
        seed = manage(
            stack,
            "dr_drill_step",
            "seed",
            "--tenants=1",
            f"--messages={MESSAGES}",
            f"--secrets-file={root / 'secrets.json'}",
        )
        assert seed.returncode == 0, seed.stdout[-2000:] + seed.stderr[-2000:]
        backup = manage(stack, "dr_backup", str(root / "backup"))
        assert backup.returncode == 0, backup.stdout[-2000:] + backup.stderr[-2000:]
        yield stack, root / "backup"
    finally:
        stack.remove()
        shutil.rmtree(root, ignore_errors=True)


def test_the_manifest_holds_versions_counts_and_checksums(seeded: Any) -> None:
    _, backup = seeded
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert {"postgres", "clickhouse", "vault", "librdkafka"} <= set(manifest["versions"])
    assert manifest["kafka"]["records"] == MESSAGES
    assert manifest["postgres"]["tables"]["tenants_tenant"] == 1
    assert manifest["postgres"]["roles"] == ["smarteros", "smarteros_platform"]
    assert manifest["clickhouse"]["tables"]["operation_calls"]["rows"] == 500
    assert manifest["vault"]["method"] == "raft-snapshot"
    assert list(manifest["vault"]["keys"]) == ["smarteros-drill1/tenant-drill1"]
    for name, info in manifest["files"].items():
        assert file_sha256(backup / name) == info["sha256"], name
    topics = json.loads((backup / "kafka" / "manifest.json").read_text())["topics"]
    partitions = [info for entry in topics.values() for info in entry["files"].values()]
    assert sum(info["records"] for info in partitions) == MESSAGES
    for info in partitions:
        if info["records"]:
            assert info["last_offset"] - info["first_offset"] + 1 == info["records"]
        assert len(info["content_sha256"]) == 64


def test_a_backup_that_does_not_match_its_manifest_is_refused(seeded: Any, tmp_path: Path) -> None:
    stack, backup = seeded
    copy = tmp_path / "backup"
    shutil.copytree(backup, copy)
    victim = sorted((copy / "kafka").glob("drill1.shopify.webhooks-*.records.gz"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = manage(stack, "dr_restore", str(copy))
    assert result.returncode != 0
    assert f"{victim}: checksum mismatch" in result.stderr


def test_a_target_that_is_not_empty_is_refused_and_left_alone(seeded: Any) -> None:
    stack, backup = seeded
    result = manage(stack, "dr_restore", str(backup))
    assert result.returncode != 0
    assert "the target is not empty (postgres: database smarteros has" in result.stderr
    for part in ("clickhouse: tables with rows", "vault: 1 transit keys", "kafka: "):
        assert part in result.stderr
    assert "--force" in result.stderr
    assert "restored" not in result.stdout


def test_force_replaces_what_the_target_holds_and_verifies_it(seeded: Any) -> None:
    stack, backup = seeded
    platform = stack.env["DATABASE_PLATFORM_URL"]
    with psycopg.connect(platform, autocommit=True) as conn:
        conn.execute("UPDATE tenants_tenant SET name = 'changed after the backup'")
    result = manage(stack, "dr_restore", str(backup), "--force")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{MESSAGES} Kafka records" in result.stdout
    with psycopg.connect(platform, autocommit=True) as conn:
        row = conn.execute("SELECT name FROM tenants_tenant").fetchone()
    assert row == ("Drill tenant 1",)
