"""The soak with faults, short: its own whole stack, three tenants' traffic on every surface,
every fault of the schedule injected and recovered, and every invariant of the report held."""

from __future__ import annotations

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
    assert result.returncode == 0, report[-6000:] + result.stderr[-3000:]
    lines = set(report.splitlines())
    for line in ("lost: 0", "duplicated: 0", "5xx: 0", "hangs: 0", "effects once: yes"):
        assert line in lines, report[-6000:]
    assert "telemetry equal: yes" in lines, report[-6000:]
    for fault in FAULTS:
        assert any(line.startswith(f"fault: {fault}: recovered in") for line in lines), report[
            -6000:
        ]
    assert "result: pass" in lines
