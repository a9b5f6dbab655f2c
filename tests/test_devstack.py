"""`make run`'s supervisor: serves the console, then Ctrl-C stops everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.processes import ROOT, descendants, free_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def test_run_serves_then_ctrl_c_leaves_no_stray_process() -> None:
    port = free_port()
    log_path = ROOT / ".run" / "logs" / "test-devstack-run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "scripts/devstack.py", "run"],
            cwd=ROOT,
            env={**os.environ, "SMARTEROS_WEB_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while b"SmarterOS is running" not in log_path.read_bytes():
                assert supervisor.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
                assert response.status == 200
                assert json.load(response)["down"] == []
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as response:
                assert b"Sign in" in response.read()
            started = descendants(supervisor.pid)
            assert (
                len(started) >= 5
            )  # web, worker (with the consumers), beat, relay, worker children
            os.killpg(supervisor.pid, signal.SIGINT)
            assert supervisor.wait(timeout=60) == 0
        finally:
            if supervisor.poll() is None:
                os.killpg(supervisor.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert [pid for pid in started if alive(pid)] == []
    assert b"stopped everything this run started" in log_path.read_bytes()
