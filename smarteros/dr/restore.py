"""`dr_restore DIR`: every part back into fresh, empty services, each verified against the
manifest. The parts are independent, so they are restored side by side: Vault in a thread,
PostgreSQL by a pg_restore process, ClickHouse then Kafka here. The application needs them all
(the tenants' credentials are useless without Vault's keys): start it once this returns."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from smarteros.dr.clickhouse import clickhouse_restore, clickhouse_target_state
from smarteros.dr.common import DrError, Progress, manifest_verified
from smarteros.dr.postgres import (
    database_name,
    postgres_restore_finish,
    postgres_restore_start,
    postgres_target_state,
)
from smarteros.dr.vault import (
    vault_restore,
    vault_target_state,
    vault_verify_restored_separately,
)
from smarteros.events.backup import BackupError, topics_restore, topics_with_records


def dr_restore(
    directory: Path,
    *,
    postgres_admin_url: str,
    clickhouse_http: str,
    vault_unseal_keys_file: Path | None,
    force: bool,
    progress: Progress,
    vault_restored_separately: bool = False,
) -> dict[str, Any]:
    """Restore and verify every part; the counts restored per part and the seconds each took."""
    manifest = manifest_verified(directory, progress)
    if not force:
        _refuse_if_not_empty(postgres_admin_url, check_vault=not vault_restored_separately)
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}

    # Vault runs beside the others (a snapshot install waits seconds for the server to reseal);
    # the parts do not depend on each other, only the application needs them all.
    def vault_part() -> None:
        started = time.monotonic()
        if vault_restored_separately:
            counts["vault_keys"] = vault_verify_restored_separately(
                manifest["vault"], progress=progress
            )
        else:
            counts["vault_keys"] = vault_restore(
                directory,
                manifest["vault"],
                unseal_keys_file=vault_unseal_keys_file,
                force=force,
                progress=progress,
            )
        seconds["vault"] = time.monotonic() - started

    vault = _Thread(vault_part)
    started = time.monotonic()
    pg_restore = None
    try:
        pg_restore = postgres_restore_start(
            directory,
            manifest["postgres"],
            admin_url=postgres_admin_url,
            app_url=settings.DATABASE_URL,
            platform_url=settings.DATABASE_PLATFORM_URL,
            force=force,
            progress=progress,
        )
        clickhouse_started = time.monotonic()
        counts["clickhouse_rows"] = clickhouse_restore(
            directory, manifest["clickhouse"], http=clickhouse_http, force=force, progress=progress
        )
        seconds["clickhouse"] = time.monotonic() - clickhouse_started
        kafka_started = time.monotonic()
        try:
            report = topics_restore(
                directory / manifest["kafka"]["folder"],
                progress=lambda line: progress(f"kafka: {line}"),
                force=force,
            )
        except BackupError as exc:
            raise DrError(f"kafka: {exc}") from None
        counts["kafka_records"] = report.records
        seconds["kafka"] = time.monotonic() - kafka_started
        counts["postgres_rows"] = postgres_restore_finish(
            pg_restore,
            manifest["postgres"],
            platform_url=settings.DATABASE_PLATFORM_URL,
            progress=progress,
        )
        seconds["postgres"] = time.monotonic() - started
    finally:
        if pg_restore is not None:
            _stop(pg_restore)
        vault.join()
    if counts["kafka_records"] != manifest["kafka"]["records"]:
        raise DrError(
            f"kafka: {counts['kafka_records']} records restored, backup had "
            f"{manifest['kafka']['records']}"
        )
    return {"counts": counts, "seconds": seconds}


class _Thread:
    """A part restored in a thread; join() re-raises its error."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _refuse_if_not_empty(postgres_admin_url: str, *, check_vault: bool) -> None:
    """Check every target before touching any, so a wrong target is refused whole."""
    held = {
        "postgres": postgres_target_state(
            admin_url=postgres_admin_url, database=database_name(settings.DATABASE_URL)
        )[1],
        "clickhouse": clickhouse_target_state(),
        "vault": vault_target_state() if check_vault else "",
    }
    topics = topics_with_records()
    if topics:
        held["kafka"] = f"{len(topics)} topics hold records, e.g. {topics[0]}"
    found = [f"{part}: {what}" for part, what in held.items() if what]
    if found:
        raise DrError(
            "the target is not empty (" + "; ".join(found) + "); restore needs fresh services, "
            "or --force to replace what they hold"
        )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)
