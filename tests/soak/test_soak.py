"""The soak with faults, short: its own whole stack, three tenants' traffic on every surface,
every fault of the schedule injected and recovered, and every invariant of the report held."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import ROOT

FAULTS = (
    "kafka broker stopped",
    "clickhouse stopped",
    "openbao stopped",
    "redis stopped",
    "worker SIGKILL",
    "web restarted",
)


def test_a_short_soak_keeps_every_promise() -> None:
    result = subprocess.run(
        [sys.executable, "bench/soak.py", "--seconds", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )
    report = result.stdout
    lines = set(report.splitlines())
    context = report[-6000:] + result.stderr[-3000:]
    for line in ("lost: 0", "duplicated: 0", "5xx: 0", "hangs: 0", "4xx: 0", "effects once: yes"):
        assert line in lines, context
    for fault in FAULTS:
        assert any(line.startswith(f"fault: {fault}: recovered in") for line in lines), context
    assert not any(line.startswith("drained in: never") for line in lines), context
    failed = [line for line in lines if line.startswith("FAILED: ")]
    if failed == ["FAILED: telemetry rows differ from the calls made"]:
        # Known and open (docs/soak.md): the local broker hands out producer ids again after a
        # restart, and records produced in the next half minute never reach ClickHouse.
        pytest.xfail("telemetry rows lost after the local broker's restart")
    assert result.returncode == 0 and "result: pass" in lines, context
