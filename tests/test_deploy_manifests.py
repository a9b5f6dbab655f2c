"""The Kubernetes manifests (deploy/k8s): valid objects for the Kubernetes API (its published
schema, offline), naming only settings the application reads, running the commands of
compose.yml, with beat unable to run twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
KUBERNETES_VERSION = "1.31"
# What the Secret `smarteros-secrets` holds (deploy/k8s/README.md): never in a manifest.
SECRETS = {
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_PLATFORM_URL",
    "VAULT_TOKEN",
    "CLICKHOUSE_URL",
    "SENTRY_DSN",
}
COMPONENTS = {"web", "worker", "beat", "relay", "setup"}


def objects() -> list[dict[str, Any]]:
    return [o for path in MANIFESTS for o in yaml.safe_load_all(path.read_text()) if o]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects() if o["kind"] == kind}


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def workloads() -> list[dict[str, Any]]:
    return [o for o in objects() if o["kind"] in ("Deployment", "Job")]


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_is_valid_for_the_kubernetes_api(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_process_of_compose_is_there_with_its_command() -> None:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())["services"]
    found = {component(o): container(o)["command"] for o in workloads()}
    assert set(found) == COMPONENTS
    for name, command in found.items():
        expected = list(compose[name]["command"])
        if "--workers" in expected:  # one uvicorn worker per pod: pods are the unit of scale
            expected[expected.index("--workers") + 1] = "1"
        assert command == expected, name


def test_settings_named_are_read_by_the_application() -> None:
    settings_text = "".join(p.read_text() for p in (ROOT / "smarteros" / "settings").glob("*.py"))
    config = by_kind("ConfigMap")["smarteros-config"]["data"]
    named = set(config) | SECRETS
    for obj in workloads():
        named |= {e["name"] for e in container(obj).get("env", [])}
        sources = container(obj)["envFrom"]
        assert {"configMapRef": {"name": "smarteros-config"}} in sources
        assert {"secretRef": {"name": "smarteros-secrets"}} in sources
    unread = sorted(n for n in named if not re.search(rf"[\"']{n}[\"']", settings_text))
    assert not unread, f"settings no part of the application reads: {unread}"
    assert not set(config) & SECRETS, "a secret in the ConfigMap"
    compose_env = yaml.safe_load((ROOT / "compose.yml").read_text())["x-app"]["environment"]
    missing = sorted(set(compose_env) - named)
    assert not missing, f"set in compose.yml, not in the manifests: {missing}"


def test_beat_runs_once_and_probes_name_real_urls() -> None:
    beat = by_kind("Deployment")["smarteros-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    web = container(by_kind("Deployment")["smarteros-web"])
    for probe in ("livenessProbe", "readinessProbe"):
        resolve(web[probe]["httpGet"]["path"])
