"""OpenBao / Vault: the Transit keys that decrypt every stored credential.

With integrated storage (raft) the backup is a raft snapshot (`sys/storage/raft/snapshot`): the
whole storage, encrypted by the source's barrier, Transit keys and tokens included. The restore
force-installs it on a fresh, initialised server (`sys/storage/raft/snapshot-force`); the server
then answers with the source's keyring, so it is unsealed with the source's unseal keys, which
are never in the backup (their holders bring them; DR_VAULT_UNSEAL_KEYS_FILE or
--vault-unseal-keys-file).

Without raft (a dev server in memory) each Transit key is exported with `transit/backup/<key>`
where the key allows it (exportable, allow_plaintext_backup); a key that does not is listed in
the manifest as a manual step (docs/runbook-disaster-recovery.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from smarteros.dr.common import DrError, Progress, file_sha256

SNAPSHOT = "vault/raft.snap"
TRANSIT_FOLDER = "vault/transit"


def _url(path: str) -> str:
    return f"{settings.VAULT_ADDR.rstrip('/')}/v1/{path}"


def _headers(token: str | None = None, namespace: str | None = None) -> dict[str, str]:
    headers = {"X-Vault-Token": token or settings.VAULT_TOKEN}
    namespace = settings.VAULT_NAMESPACE if namespace is None else namespace
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    return headers


def _call(
    method: str, path: str, body: Any = None, *, namespace: str | None = None, timeout: float = 30
) -> tuple[int, Any]:
    response = requests.request(
        method, _url(path), json=body, headers=_headers(namespace=namespace), timeout=timeout
    )
    try:
        return response.status_code, response.json() if response.content else {}
    except ValueError:
        return response.status_code, {"errors": [response.text[:300]]}


def _namespaces() -> list[str]:
    """VAULT_NAMESPACE and its child namespaces (each tenant's, where the server has them)."""
    base = settings.VAULT_NAMESPACE or ""
    code, answer = _call("LIST", "sys/namespaces")
    children = answer["data"]["keys"] if code == 200 else []
    return [base] + ["/".join(p for p in (base, child.rstrip("/")) if p) for child in children]


def transit_keys() -> dict[str, int]:
    """Every key of the Transit mount, in VAULT_NAMESPACE and the namespaces under it, as
    `namespace/key` (or `key`) with its latest version."""
    mount = settings.VAULT_TRANSIT_MOUNT
    versions = {}
    for namespace in _namespaces():
        code, answer = _call("LIST", f"{mount}/keys", namespace=namespace)
        if code == 404:
            continue
        if code != 200:
            raise DrError(f"vault: listing {namespace}/{mount}/keys failed ({code}): {answer}")
        for name in answer["data"]["keys"]:
            code, key = _call("GET", f"{mount}/keys/{name}", namespace=namespace)
            if code != 200:
                raise DrError(f"vault: reading key {name} failed ({code}): {key}")
            versions["/".join(p for p in (namespace, name) if p)] = int(
                key["data"]["latest_version"]
            )
    return versions


def _split(qualified: str) -> tuple[str, str]:
    namespace, _, name = qualified.rpartition("/")
    return namespace, name


def _cluster_id() -> str:
    return str(requests.get(_url("sys/seal-status"), timeout=10).json().get("cluster_id", ""))


def _version() -> str:
    _, health = _call("GET", "sys/health")
    return str(health.get("version", "")) if isinstance(health, dict) else ""


def vault_backup(directory: Path, *, progress: Progress) -> dict[str, Any]:
    """A raft snapshot, else the exportable Transit keys; the keys' names and versions either way."""
    (directory / "vault").mkdir(parents=True, exist_ok=True)
    keys = transit_keys()
    part: dict[str, Any] = {
        "server_version": _version(),
        "cluster_id": _cluster_id(),
        "transit_mount": settings.VAULT_TRANSIT_MOUNT,
        "keys": keys,
    }
    with requests.get(
        _url("sys/storage/raft/snapshot"), headers=_headers(), stream=True, timeout=300
    ) as response:
        if response.status_code == 200:
            with (directory / SNAPSHOT).open("wb") as file:
                for chunk in response.iter_content(1 << 20):
                    file.write(chunk)
            part.update(method="raft-snapshot", snapshot=SNAPSHOT)
            progress(
                f"vault: raft snapshot, {(directory / SNAPSHOT).stat().st_size} bytes, "
                f"{len(keys)} transit keys"
            )
            return part
        reason = response.text[:200]
    progress(f"vault: no raft snapshot ({reason.strip()}); exporting transit keys one by one")
    (directory / TRANSIT_FOLDER).mkdir(parents=True, exist_ok=True)
    exported, manual = [], []
    for qualified in keys:
        namespace, name = _split(qualified)
        code, answer = _call(
            "GET", f"{settings.VAULT_TRANSIT_MOUNT}/backup/{name}", namespace=namespace
        )
        if code == 200:
            (directory / TRANSIT_FOLDER / f"{qualified.replace('/', '__')}.json").write_text(
                json.dumps({"backup": answer["data"]["backup"]})
            )
            exported.append(qualified)
        else:
            manual.append(qualified)
    part.update(method="transit-export", exported=exported, manual=manual)
    if manual:
        progress(
            f"vault: {len(manual)} keys refuse export (not exportable / no plaintext backup): "
            "back up the server's storage as the runbook says"
        )
    return part


def _namespace_and_mount(namespace: str, mount: str) -> None:
    """Create the namespace (one level under its parent) and its Transit mount if missing."""
    if namespace and namespace != (settings.VAULT_NAMESPACE or ""):
        parent, _, own = namespace.rpartition("/")
        _call("POST", f"sys/namespaces/{own}", {}, namespace=parent)
    code, mounts = _call("GET", "sys/mounts", namespace=namespace)
    if f"{mount}/" not in (mounts.get("data", mounts) if code == 200 else {}):
        _call("POST", f"sys/mounts/{mount}", {"type": "transit"}, namespace=namespace)


def vault_target_state() -> str:
    """'' when the Transit mount is absent or holds no keys."""
    try:
        keys = transit_keys()
    except requests.RequestException as exc:
        raise DrError(f"vault: {settings.VAULT_ADDR} does not answer: {exc}") from None
    return f"{len(keys)} transit keys" if keys else ""


def _sealed() -> bool:
    return bool(requests.get(_url("sys/seal-status"), timeout=10).json().get("sealed"))


def _wait_sealed(timeout: float = 30) -> bool:
    """After a forced snapshot from another cluster the server finds its root key encrypted
    with the source's keyring and seals itself, a few seconds later; the unseal has to wait for
    that. False if it has not sealed within `timeout`."""
    deadline = time.monotonic() + timeout
    while not _sealed():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _unseal(keys_file: Path | None, progress: Progress) -> None:
    if keys_file is None:
        raise DrError(
            "vault: the restored server is sealed; unseal it with the source cluster's unseal "
            "keys (bao operator unseal) or pass --vault-unseal-keys-file"
        )
    held = json.loads(keys_file.read_text())
    # What `bao operator init -format=json` prints ({"unseal_keys_b64": [...]}), a list, or
    # {"keys": [...]} / {"unseal_key": "..."}.
    if isinstance(held, list):
        keys = held
    else:
        keys = held.get("unseal_keys_b64") or held.get("keys") or [held["unseal_key"]]
    for key in keys:
        answer = requests.put(_url("sys/unseal"), json={"key": key}, timeout=30).json()
        if answer.get("errors"):
            raise DrError(f"vault: unseal refused: {answer['errors']}")
        if not answer.get("sealed"):
            break
    else:
        raise DrError("vault: still sealed after every unseal key in the file")
    progress("vault: unsealed with the source cluster's keys")


def _wait_active(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(_url("sys/health"), timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise DrError(f"vault: not active {timeout:.0f}s after the restore")


def vault_restore(
    directory: Path,
    part: dict[str, Any],
    *,
    unseal_keys_file: Path | None,
    force: bool,
    progress: Progress,
) -> int:
    """Install the snapshot (or the exported keys), unseal, and check every Transit key is back
    at its version."""
    held = vault_target_state()
    if held and not force:
        raise DrError(f"vault: the target is not empty ({held}); use --force to replace it")
    if part["method"] == "raft-snapshot":
        snapshot = directory / part["snapshot"]
        same_cluster = bool(part.get("cluster_id")) and part["cluster_id"] == _cluster_id()
        with snapshot.open("rb") as body:
            response = requests.post(
                _url("sys/storage/raft/snapshot-force"),
                data=body,
                headers=_headers(),
                timeout=300,
            )
        if response.status_code not in (200, 204):
            raise DrError(
                f"vault: snapshot restore refused ({response.status_code}): {response.text[:300]}"
            )
        progress(f"vault: raft snapshot installed ({file_sha256(snapshot)[:12]})")
        # Another cluster's snapshot makes the server reseal (its keyring is the source's); a
        # snapshot of this very cluster (--force in place) does not.
        if not same_cluster and _wait_sealed():
            _unseal(unseal_keys_file, progress)
        _wait_active()
    else:
        mount = settings.VAULT_TRANSIT_MOUNT
        for qualified in part["exported"]:
            namespace, name = _split(qualified)
            _namespace_and_mount(namespace, mount)
            backup = json.loads(
                (directory / TRANSIT_FOLDER / f"{qualified.replace('/', '__')}.json").read_text()
            )
            code, answer = _call(
                "POST",
                f"{mount}/restore/{name}",
                {"backup": backup["backup"], "force": force},
                namespace=namespace,
            )
            if code not in (200, 204):
                raise DrError(f"vault: restoring key {name} failed ({code}): {answer}")
        if part["manual"]:
            progress(f"vault: {len(part['manual'])} keys need the manual step of the runbook")
    return _verify_keys(part, progress, manual_ok=True)


def _verify_keys(part: dict[str, Any], progress: Progress, *, manual_ok: bool) -> int:
    restored = transit_keys()
    missing = [
        name
        for name, version in part["keys"].items()
        if restored.get(name) != version and not (manual_ok and name in part.get("manual", []))
    ]
    if missing:
        raise DrError(f"vault: keys missing or at another version after restore: {missing[:5]}")
    progress(f"vault: {len(restored)} transit keys at their versions")
    return len(restored)


def vault_verify_restored_separately(part: dict[str, Any], *, progress: Progress) -> int:
    """Vault's storage was restored by hand (a file-storage server's volume, see the runbook):
    check that every Transit key of the backup is there at its version."""
    return _verify_keys(part, progress, manual_ok=False)
