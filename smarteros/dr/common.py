"""What every part of a disaster-recovery backup shares: the error, progress lines, running
a tool, checksums and the top-level manifest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class DrError(Exception):
    """A backup or restore that cannot go on; the message names the part and the reason."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_tool(
    argv: Sequence[str], *, env: dict[str, str] | None = None, what: str
) -> subprocess.CompletedProcess[str]:
    """Run a command-line tool; DrError with its stderr when it fails."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise DrError(f"{what}: {argv[0]} is not installed") from None
    if result.returncode != 0:
        raise DrError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


class Timer:
    """Seconds since it was made, for progress lines."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def files_checksums(directory: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under `directory` except the top manifest."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.relative_to(directory).as_posix() != MANIFEST:
            found[path.relative_to(directory).as_posix()] = {
                "sha256": file_sha256(path),
                "bytes": path.stat().st_size,
            }
    return found


def manifest_write(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def manifest_verified(directory: Path, progress: Progress) -> dict[str, Any]:
    """The top manifest, after checking every file it lists (size and sha256) and that no part
    is missing; DrError names the first file that does not match."""
    path = directory / MANIFEST
    if not path.is_file():
        raise DrError(f"{path}: missing; {directory} is not a dr_backup directory")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise DrError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise DrError(f"{path}: unsupported format {manifest.get('format')!r}")
    if not manifest.get("complete"):
        raise DrError(f"{path}: the backup did not finish; use another one")
    for name, info in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise DrError(f"{file}: missing")
        if file.stat().st_size != info["bytes"] or file_sha256(file) != info["sha256"]:
            raise DrError(f"{file}: checksum mismatch; the file was changed or truncated")
    progress(f"manifest: {len(manifest['files'])} files match their checksums")
    return manifest
