"""Many tenants against a running stack: does a tenant cost the same as the 3rd and the 1,000th?

Against a stack started with `scripts/devstack.py run` (or `make run`), given its ports:
1. provisions N tenants (default 1,000) through the product's own `tenant_provision`, timing each,
   and prints the p50 of the first and the last 100 and `provision ratio: R` (last/first);
2. the stack's CPU at rest over --rest-seconds (60): the sum over the devstack process and every
   process under it (services and application processes), as % of one core;
3. p95 from a signed Shopify webhook to the n8n trigger at the stand-in, for the first and the
   last tenant (each connected to Shopify and n8n at a loopback stand-in with a workflow on its
   shopify.webhooks);
4. p95 of the platform topics page and the tenant list for a platform admin;
5. the consumer groups /readyz calls stalled, and its status;
and ends with `ratio: R` (the provision ratio). --cleanup N deletes N of the tenants it made
(or `all`), through the product's deletion and deprovisioning (consumers leave their topics
first), and says whether any process of the stack exited meanwhile. A run resumes: tenants already made are kept.

Usage: .venv/bin/python bench/tenants_scale.py --url http://127.0.0.1:8000 --kafka 127.0.0.1:9092
         --vault http://127.0.0.1:8200 --redis redis://127.0.0.1:6379/0 --stack-pid PID
         [--tenants 1000] [--prefix scale] [--cleanup N|all]
(DATABASE_URL / DATABASE_PLATFORM_URL: the stack's database.)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the stack's web URL")
    parser.add_argument("--kafka", default="127.0.0.1:9092", help="its Kafka bootstrap")
    parser.add_argument("--vault", default="http://127.0.0.1:8200", help="its Vault address")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="its Redis URL")
    parser.add_argument("--stack-pid", type=int, help="devstack's pid (CPU is summed under it)")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--prefix", default="scale", help="slug prefix of the bench's tenants")
    parser.add_argument("--rest-seconds", type=float, default=60.0)
    parser.add_argument("--samples", type=int, default=20, help="requests per p95")
    parser.add_argument(
        "--cleanup",
        default="",
        help="at the end, delete this many of the bench's tenants (the last made), or `all`",
    )
    return parser.parse_args()


def configure(args: argparse.Namespace) -> None:
    """Point this process at the stack before Django loads its settings."""
    os.environ.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": args.kafka,
            "VAULT_ADDR": args.vault,
            "REDIS_URL": args.redis,
            # The SaaS stand-in listens on loopback; the egress gate allows it by this list.
            "EGRESS_ALLOWED_NETWORKS": os.environ.get("EGRESS_ALLOWED_NETWORKS", "127.0.0.1/32"),
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def say(message: str) -> None:
    print(message, flush=True)


# --- 1. provisioning ------------------------------------------------------------------------


def last_active(prefix: str, count: int) -> str:
    """The last of the bench's tenants that is active (an earlier run's cleanup deleted some)."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        slugs = Tenant.objects.filter(
            slug__in=[f"{prefix}{i:04d}" for i in range(count)], status=Tenant.Status.ACTIVE
        ).values_list("slug", flat=True)
        return max(slugs)


PROBE_EVERY = 10  # tenants between two timings of the broker's CreateTopics alone
PROBE_TOPICS: list[str] = []  # made by broker_create_seconds, deleted by probes_delete


def broker_create_seconds(prefix: str, index: int) -> float:
    """The baseline: the seconds the broker takes to create a tenant's topics (same names'
    shape, partitions and configs) for a raw admin client, none of the product's code around
    it. The probe topics are deleted at the end (probes_delete)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings

    from smarteros.events.catalog import tenant_topics

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    topics = [
        NewTopic(spec.name, spec.partitions, 1, config=spec.config())
        for spec in tenant_topics(f"{prefix}probe{index:04d}")
    ]
    PROBE_TOPICS.extend(topic.topic for topic in topics)
    started = time.perf_counter()
    for future in admin.create_topics(topics, operation_timeout=30).values():
        try:
            future.result()
        except Exception as exc:  # left by an interrupted run: that one is not timed
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return time.perf_counter() - started


def probes_delete() -> None:
    from smarteros.events.topics import topics_delete

    topics_delete(PROBE_TOPICS)


def provision_all(
    prefix: str,
    count: int,
    steps: dict[str, list[float]] | None = None,
    probes: list[float] | None = None,
) -> list[float]:
    """Make and provision the tenants `{prefix}{i:04d}` not provisioned yet; the seconds each
    provisioning took, in order (a resumed run times only the ones it made). `steps` collects
    each step's seconds, in the same order; `probes` the broker's own CreateTopics time for a
    tenant's topics, every PROBE_EVERY tenants."""
    from tenants.models import Tenant
    from tenants.provisioning import tenant_provision
    from tenants.scope import dangerously_unscoped
    from tenants.services import tenant_create

    timings = []
    began: dict[str, float] = {}

    def step(name: str, state: str, detail: str) -> None:
        if state == "running":
            began[name] = time.perf_counter()
        elif steps is not None:
            steps.setdefault(name, []).append(time.perf_counter() - began[name])

    for index in range(count):
        slug = f"{prefix}{index:04d}"
        with dangerously_unscoped():
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                tenant = tenant_create(slug=slug, name=f"Scale {index}")
        if tenant.status == Tenant.Status.ACTIVE or tenant.deleted_at is not None:
            continue  # made by an earlier run (or deleted by its cleanup, which goes on)
        started = time.perf_counter()
        tenant_provision(tenant=tenant, on_step=step)
        timings.append(time.perf_counter() - started)
        if probes is not None and len(timings) % PROBE_EVERY == 1:
            probes.append(broker_create_seconds(prefix, index))
        if len(timings) % 100 == 0:
            say(f"  {index + 1} tenants, last provisioning {timings[-1]:.3f}s")
    return timings


# --- 2. CPU at rest ---------------------------------------------------------------------------


def _cpu_ticks(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
    except OSError:
        return "?"


def cpu_at_rest(root: int, seconds: float) -> tuple[float, list[tuple[float, str]]]:
    """% of one core used by `root` and its descendants over `seconds`, and the top users."""
    from tests.processes import descendants

    pids = [root, *descendants(root)]
    before = _cpu_ticks(pids)
    time.sleep(seconds)
    after = _cpu_ticks(pids)
    hz = os.sysconf("SC_CLK_TCK")
    used = {pid: (after[pid] - before[pid]) / hz for pid in after if pid in before}
    top = sorted(((100 * s / seconds, _name(pid)) for pid, s in used.items()), reverse=True)
    return 100 * sum(used.values()) / seconds, top[:5]


# --- 3. webhook -> n8n trigger ----------------------------------------------------------------


def connect_flows(slug: str, saas_url: str) -> None:
    """Shopify and n8n at the stand-in, with a workflow on the tenant's shopify.webhooks."""
    from integrations.models import N8nTrigger
    from integrations.services import integration_connect
    from smarteros.events.subscriptions import subscriptions_changed, subscriptions_wait
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped, tenant_scope
    from tests.fixtures import deliveries
    from tests.fixtures.saas import N8N_KEY, SHOPIFY_TOKEN

    with dangerously_unscoped():
        tenant = Tenant.objects.get(slug=slug)
    with tenant_scope(tenant.pk):
        integration_connect(
            tenant=tenant,
            provider="shopify",
            config={"shop_domain": f"{slug}.myshopify.com", "api_base_url": saas_url},
            credentials={
                "access_token": SHOPIFY_TOKEN,
                "app_secret": deliveries.SHOPIFY_APP_SECRET,
            },
        )
        integration_connect(
            tenant=tenant,
            provider="n8n",
            config={"base_url": saas_url},
            credentials={"api_key": N8N_KEY, "webhook_secret": deliveries.N8N_WEBHOOK_SECRET},
        )
        N8nTrigger.objects.get_or_create(
            tenant=tenant, topic="shopify.webhooks", webhook_path=f"scale-{slug}"
        )
    # The forwarding group reads only topics with a trigger: wait until it reads this one.
    subscriptions_wait(subscriptions_changed(), timeout=60)


def webhook_to_n8n(web: Any, saas: Any, slug: str, samples: int) -> list[float]:
    """Seconds from each signed webhook's POST to its trigger reaching the n8n stand-in."""
    from tests.fixtures import deliveries

    latencies = []
    for _ in range(samples):
        order_id = 10**12 + uuid.uuid4().int % 10**11
        body = deliveries.dumps(deliveries.shopify_order(order_id))
        headers = deliveries.shopify_headers(body, shop_domain=f"{slug}.myshopify.com")
        headers["Content-Type"] = "application/json"
        started = time.monotonic()
        response = web.post(f"/hooks/shopify/{slug}/", content=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"webhook for {slug}: {response.status_code} {response.text[:200]}")
        path, marker = f"/webhook/scale-{slug}", str(order_id)
        while time.monotonic() - started < 60:
            with saas.state.lock:
                seen = any(p == path and marker in str(b) for _, p, _, b in saas.state.requests)
            if seen:
                latencies.append(time.monotonic() - started)
                break
            time.sleep(0.02)
        else:
            # Never arrived: the p95 says so, and more samples would only wait as long again.
            latencies.append(float("inf"))
            print(
                f"  no trigger of {slug} reached the n8n stand-in within 60 s; a stack started "
                "without EGRESS_ALLOWED_NETWORKS=127.0.0.1/32 refuses loopback stand-ins "
                "(start it as `EGRESS_ALLOWED_NETWORKS=127.0.0.1/32 make run`)",
                flush=True,
            )
            break
    return latencies


# --- 4. operator pages ------------------------------------------------------------------------


def admin_session() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(
        username="scale-bench", defaults={"is_staff": True, "is_superuser": True}
    )
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def page_p95(web: Any, path: str, session: str, samples: int, **params: str) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = web.get(path, params=params, cookies={"sessionid": session})
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
    return percentile(times, 0.95)


# --- 5. cleanup -------------------------------------------------------------------------------


def _request_deletion(tenant: Any) -> None:
    """The product's deletion request, as a platform admin makes it."""
    import tenants.lifecycle as lifecycle
    import tenants.provisioning as provisioning

    # The lifecycle state machine where it is in place, else the older direct request.
    apply = getattr(lifecycle, "tenant_lifecycle_apply", None)
    if apply is not None:
        apply(tenant=tenant, action="delete", actor="platform", actor_name="bench:tenants_scale")
    else:
        older = "tenant_delete_request"
        getattr(provisioning, older)(tenant=tenant, actor="bench:tenants_scale")


def cleanup(prefix: str, how_many: str) -> list[str]:
    """Delete the last `how_many` (or `all`) of the bench's tenants as the product does: the
    deletion request, then deprovisioning with no grace period."""
    from django.conf import settings

    from tenants.models import Tenant
    from tenants.provisioning import tenants_deprovision_due
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        mine = list(
            Tenant.objects.filter(slug__startswith=prefix, deprovisioned_at__isnull=True).exclude(
                status=Tenant.Status.DELETED
            )
        )
    mine.sort(key=lambda tenant: tenant.slug)
    if how_many != "all":
        mine = mine[-int(how_many) :]
    for tenant in mine:
        _request_deletion(tenant)
    settings.TENANT_DELETION_GRACE_DAYS = 0
    return tenants_deprovision_due()


def restarts(web: Any) -> dict[str, Any]:
    processes = web.get("/readyz").json().get("processes", {})
    return {name: state.get("restarts") for name, state in processes.items()}


def main() -> None:
    args = arguments()
    configure(args)
    import httpx

    from tests.fixtures.saas import SaasServer

    web = httpx.Client(base_url=args.url, timeout=120)
    say(f"provisioning {args.tenants} tenants ({args.prefix}0000...)")
    steps: dict[str, list[float]] = {}
    probes: list[float] = []
    timings = provision_all(args.prefix, args.tenants, steps, probes)
    first = statistics.median(timings[:100]) if timings else float("nan")
    last = statistics.median(timings[-100:]) if timings else float("nan")
    ratio = last / first if timings else float("nan")
    say(f"provisioning p50: first 100 {first:.3f}s, last 100 {last:.3f}s ({len(timings)} timed)")
    for name, seconds in steps.items():  # where the time goes: the product, or an engine
        say(
            f"  step {name} p50: first 100 {statistics.median(seconds[:100]):.3f}s, "
            f"last 100 {statistics.median(seconds[-100:]):.3f}s"
        )
    if len(probes) >= 2:
        # The same tenant's topics created by a raw client, timed beside ours: how much of the
        # growth is the broker's.
        span = max(1, len(probes) // 10)
        probe_first, probe_last = (statistics.median(p) for p in (probes[:span], probes[-span:]))
        say(
            f"  broker CreateTopics alone (raw client, {len(probes)} probes): first "
            f"{probe_first:.3f}s, last {probe_last:.3f}s, ratio {probe_last / probe_first:.2f}"
        )
        probes_delete()
    say(f"provision ratio: {ratio:.2f}")

    with SaasServer() as saas:
        edge = [f"{args.prefix}0000", last_active(args.prefix, args.tenants)]
        for slug in edge:
            connect_flows(slug, saas.url)
        time.sleep(5)  # connections and triggers are read by handlers with a short cache
        for label, slug in zip(("first", "last"), edge, strict=True):
            webhook_to_n8n(web, saas, slug, 2)  # warm: connections, caches
            hooks = webhook_to_n8n(web, saas, slug, args.samples)
            say(
                f"webhook -> n8n trigger p95, {label} tenant ({slug}): {percentile(hooks, 0.95):.2f}s"
            )

    if args.stack_pid:
        say(f"CPU at rest over {args.rest_seconds:.0f}s ...")
        time.sleep(10)  # the webhooks' work settles first
        total, top = cpu_at_rest(args.stack_pid, args.rest_seconds)
        say(f"stack CPU at rest: {total:.1f}% of one core")
        for share, name in top:
            say(f"  {share:5.1f}%  {name}")

    session = admin_session()
    topics = page_p95(web, "/topics/", session, args.samples)
    searched = page_p95(web, "/topics/", session, args.samples, tenant=edge[1])
    tenants = page_p95(web, "/tenants/", session, args.samples)
    say(f"topics page p95: {topics * 1000:.0f} ms (search by tenant {searched * 1000:.0f} ms)")
    say(f"tenant list p95: {tenants * 1000:.0f} ms")

    ready = web.get("/readyz").json()
    groups = ready.get("consumer_groups", {})
    stalled = sorted(name for name, group in groups.items() if group.get("stalled"))
    lags = ", ".join(f"{name} {group['lag']}" for name, group in sorted(groups.items()))
    say(f"/readyz: {ready['status']} {ready.get('degraded') or ''}; group lag: {lags}")
    say(f"stalled consumer groups: {len(stalled)} {' '.join(stalled)}")

    if args.cleanup:
        before = restarts(web)
        started = time.perf_counter()
        done = cleanup(args.prefix, args.cleanup)
        after = restarts(web)
        say(
            f"cleanup: {len(done)} tenants deprovisioned in {time.perf_counter() - started:.1f}s; "
            f"process restarts before {before}, after {after}"
        )
    say(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
