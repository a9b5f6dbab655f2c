"""scripts/install_n8n.sh: idempotent, skippable, and it never trusts an interrupted install.
(The install itself is exercised by the set-up and by the real-n8n tests that need it.)"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from tests.processes import ROOT

SCRIPT = ROOT / "scripts" / "install_n8n.sh"
SPEC = ROOT / "scripts" / "n8n" / "package.json"


def run(env: dict[str, str], path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = f"{path_prefix}:{os.environ['PATH']}" if path_prefix else os.environ["PATH"]
    return subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def fake_npm(tmp_path: Path) -> Path:
    """An `npm` that records its arguments instead of installing anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path}/npm-calls\n'
        'prefix="$3"; mkdir -p "$prefix/node_modules/.bin"\n'
        'printf "#!/bin/sh\\n" > "$prefix/node_modules/.bin/n8n"; chmod +x "$prefix/node_modules/.bin/n8n"\n'
    )
    npm.chmod(0o755)
    return bin_dir


def test_smarteros_real_n8n_0_skips_the_install(tmp_path: Path) -> None:
    done = run({"SMARTEROS_REAL_N8N": "0", "SMARTEROS_N8N_DIR": str(tmp_path / "n8n")})
    assert done.returncode == 0
    assert "SMARTEROS_REAL_N8N=0" in done.stdout
    assert not (tmp_path / "n8n").exists()


def test_installs_once_then_skips_and_redoes_an_unfinished_install(tmp_path: Path) -> None:
    target = tmp_path / "n8n"
    env = {"SMARTEROS_N8N_DIR": str(target), "SMARTEROS_REAL_N8N": "1"}
    npm_bin = fake_npm(tmp_path)

    first = run(env, npm_bin)
    assert first.returncode == 0, first.stderr
    assert "installing n8n 2.8.4" in first.stdout and "installed in" in first.stdout
    calls = (tmp_path / "npm-calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith(f"install --prefix {target}")
    assert (target / "package.json").read_text() == SPEC.read_text()
    marker = hashlib.sha256(SPEC.read_bytes()).hexdigest()
    assert (target / ".installed").read_text().strip() == marker

    again = run(env, npm_bin)
    assert again.returncode == 0 and again.stdout == ""
    assert len((tmp_path / "npm-calls").read_text().splitlines()) == 1

    (target / ".installed").unlink()  # as if the previous install was interrupted
    third = run(env, npm_bin)
    assert third.returncode == 0 and "installing n8n" in third.stdout
    assert len((tmp_path / "npm-calls").read_text().splitlines()) == 2


def test_a_failed_npm_install_fails_with_the_log_and_leaves_no_marker(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm ERR! network ETIMEDOUT' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    target = tmp_path / "n8n"
    failed = run({"SMARTEROS_N8N_DIR": str(target), "SMARTEROS_REAL_N8N": "1"}, bin_dir)
    assert failed.returncode == 1
    assert "npm could not install n8n 2.8.4" in failed.stderr
    assert "ETIMEDOUT" in failed.stderr
    assert not (target / ".installed").exists()
