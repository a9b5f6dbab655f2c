"""OpenBao without integrated storage (a dev server, in memory): no raft snapshot, so each
Transit key is exported where the key allows it, and the ones that refuse are listed as the
runbook's manual step instead of being skipped silently."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests

from smarteros.dr.vault import vault_backup, vault_restore
from tests.processes import vault_server

TOKEN = "dr-test-root"


def _use(settings: Any, port: int) -> str:
    settings.VAULT_ADDR = f"http://127.0.0.1:{port}"
    settings.VAULT_TOKEN = TOKEN
    settings.VAULT_TRANSIT_MOUNT = "transit"
    settings.VAULT_NAMESPACE = ""
    return f"http://127.0.0.1:{port}/v1"


def test_exportable_keys_are_carried_and_the_others_named(settings: Any, tmp_path: Path) -> None:
    headers = {"X-Vault-Token": TOKEN}
    lines: list[str] = []
    with vault_server(TOKEN) as source:
        api = _use(settings, source.port)
        requests.post(f"{api}/sys/mounts/transit", json={"type": "transit"}, headers=headers)
        requests.post(
            f"{api}/transit/keys/portable",
            json={"exportable": True, "allow_plaintext_backup": True},
            headers=headers,
        ).raise_for_status()
        requests.post(f"{api}/transit/keys/sealed-in", json={}, headers=headers).raise_for_status()
        ciphertext = requests.post(
            f"{api}/transit/encrypt/portable",
            json={"plaintext": base64.b64encode(b"shpss_secret").decode()},
            headers=headers,
        ).json()["data"]["ciphertext"]
        part = vault_backup(tmp_path, progress=lines.append)

    assert part["method"] == "transit-export"
    assert part["exported"] == ["portable"] and part["manual"] == ["sealed-in"]
    assert any("1 keys refuse export" in line and "runbook" in line for line in lines)

    with vault_server(TOKEN) as target:
        api = _use(settings, target.port)
        restored = vault_restore(
            tmp_path, part, unseal_keys_file=None, force=False, progress=lines.append
        )
        assert restored == 1
        plaintext = requests.post(
            f"{api}/transit/decrypt/portable", json={"ciphertext": ciphertext}, headers=headers
        ).json()["data"]["plaintext"]
    assert base64.b64decode(plaintext) == b"shpss_secret"
    assert "vault: 1 keys need the manual step of the runbook" in lines
