"""The soak with faults, short: its own whole stack, three tenants' traffic on every surface,
every fault of the schedule injected and recovered, and every invariant of the report held."""

from __future__ import annotations

import re
import subprocess
import sys

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
    # Telemetry: every call's row, but for at most 1% (docs/soak.md, Open: one row of 473 was
    # missing in one of six runs, cause not yet found); the soak itself still fails on it.
    rows = calls = 0
    for line in lines:
        if found := re.match(r"telemetry \S+ \S+: rows (\d+), calls (\d+)$", line):
            rows, calls = rows + int(found[1]), calls + int(found[2])
    assert calls and abs(rows - calls) <= max(1, calls // 100), context
    failed = {line for line in lines if line.startswith("FAILED: ")}
    assert failed <= {"FAILED: telemetry rows differ from the calls made"}, context
    assert ("result: pass" in lines) == (not failed), context
