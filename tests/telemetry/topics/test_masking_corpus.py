"""Planted secrets and personal data, one message per kind, read back through every surface of
the topic viewer (browse and live over the websocket, the message page, the export) against a
real broker: every planted value is masked everywhere. A tenant that turns contact-data masking
off sees e-mail addresses and phone numbers, and nothing else more."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from pydantic import Field, SecretStr

from smarteros.events.schemas import PERSONAL, SECRET, EventData, event_type
from tests.telemetry.topics.conftest import envelope, produce
from tests.telemetry.topics.sockets import collect, open_socket, run_sockets, until

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"


@event_type("test.corpus.declared")
class DeclaredFields(EventData):
    vault_ref: str = Field(json_schema_extra=SECRET)
    customer_ref: str = Field(json_schema_extra=PERSONAL)
    gateway_login: SecretStr | None = None


# (kind, message data, the planted text that must not come out). Contact data (e-mail, phone)
# is marked so the opt-out test knows what it may see.
CONTACT = "contact"
CORPUS: list[tuple[str, dict[str, Any], str]] = [
    ("number under a secret name", {"password": 73915573}, "73915573"),
    (
        "object under a secret name",
        {"stripe": {"api_key": {"live": "nested-cred-1"}}},
        "nested-cred-1",
    ),
    ("list under a secret name", {"client_secrets": ["listed-cred-2", "x"]}, "listed-cred-2"),
    ("credential as a dict key", {"by_key": {"sk_live_51HxKeyAsDictKey0000": 1}}, "51HxKeyAsDict"),
    (
        f"{CONTACT}: e-mail as a dict key",
        {"by_mail": {"jane.keyholder@example.org": 3}},
        "jane.keyholder",
    ),
    (
        "Stripe secret key",
        {"note": "use sk_live_4eC39HqLyjWDarjtT1zdp7dc"},
        "4eC39HqLyjWDarjtT1zdp7dc",
    ),
    ("Stripe restricted key", {"note": "rk_live_51H8abcdefghijklmnop"}, "51H8abcdefghijklmnop"),
    ("Stripe publishable key", {"note": "pk_live_51H8qrstuvwxyzABCDEF"}, "51H8qrstuvwxyzABCDEF"),
    ("Google API key", {"note": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"}, "9tSrke72PouQMnMX"),
    ("Slack token", {"note": "xoxb-2147483648-1234567890-AbCdEfGhIjKl"}, "AbCdEfGhIjKl"),
    ("AWS access key id", {"note": "AKIAIOSFODNN7EXAMPLE"}, "IOSFODNN7EXAMPLE"),
    ("AWS session key id", {"note": "ASIAY34FZKBOKMUTVV7A"}, "Y34FZKBOKMUTVV7A"),
    (
        "AWS secret access key",
        {"note": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
        "wJalrXUtnFEMI/K7MDENG",
    ),
    ("GitHub token", {"note": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}, "16C7e42F292c6912E"),
    (
        "GitHub fine-grained token",
        {"note": "github_pat_11ABCDEFG0aBcDeFgHiJkL_mnopQRSTuvwxYZ0123"},
        "11ABCDEFG0aBcDeFgHiJkL",
    ),
    ("bearer token", {"auth": "Bearer 8f14e45fceea167a5a36dedd4bea2543"}, "8f14e45fceea167a"),
    (
        "JWT",
        {"note": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3"},
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ),
    (
        "URL userinfo",
        {"repo": "https://deploy:S3cretPassw0rd@git.example.com/r.git"},
        "S3cretPassw0rd",
    ),
    ("Shopify token", {"note": "shpat_0123456789abcdef0123456789abcdef"}, "0123456789abcdef0123"),
    ("SmarterOS key", {"note": "sos_live_AbCdEfGhIjKlMnOp1234"}, "AbCdEfGhIjKlMnOp1234"),
    (
        "private key",
        {
            "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
        },
        "MIIEowIBAAKCAQEA7",
    ),
    ("card number, spaced", {"note": "paid with 4242 4242 4242 4242"}, "4242 4242 4242 4242"),
    ("card number", {"card": {"number": "5555555555554444"}}, "5555555555554444"),
    ("US social security number", {"note": "SSN 078-05-1120 on file"}, "078-05-1120"),
    ("IBAN", {"note": "refund to GB82 WEST 1234 5698 7654 32"}, "WEST 1234 5698"),
    (f"{CONTACT}: e-mail", {"note": "ship to maria.lopez@example.com"}, "maria.lopez"),
    (f"{CONTACT}: phone in text", {"note": "call +44 20 7946 0958 today"}, "20 7946 0958"),
    (f"{CONTACT}: phone, E.164", {"customer": {"phone": "+14155550123"}}, "4155550123"),
    (f"{CONTACT}: WhatsApp id", {"contacts": [{"wa_id": "14155550188"}]}, "4155550188"),
]
DECLARED = [
    ("declared secret field", "vault:v1:declared-ciphertext-9"),
    (f"{CONTACT}: declared personal field", "CUST-88231-ZETA"),
    ("SecretStr field", "gw-login-secret-7"),
]
HEADER = ("credential-named header", "hdr-plain-credential-value")
KEYS = [
    ("credential as message key", "sk_live_KeyOfMessage1234567"),
    (f"{CONTACT}: phone as key", "+14155550177"),
]


def planted() -> list[tuple[str, str]]:
    """Every (kind, planted text): 35 kinds."""
    return [(kind, text) for kind, _, text in CORPUS] + DECLARED + [HEADER] + KEYS


def plant() -> None:
    for i, (_, data, _) in enumerate(CORPUS):
        produce(TOPIC, envelope("test.corpus.plain", data), partition=0, key=f"k{i}")
    produce(
        TOPIC,
        envelope(
            "test.corpus.declared",
            {
                "vault_ref": DECLARED[0][1],
                "customer_ref": DECLARED[1][1],
                "gateway_login": DECLARED[2][1],
            },
        ),
        partition=0,
        headers=[("X-Api-Key", HEADER[1].encode())],
    )
    for _, key in KEYS:
        produce(TOPIC, {"n": 1}, partition=0, key=key)


def total() -> int:
    return len(CORPUS) + 1 + len(KEYS)


def leaks(output: str, *, contact_shown: bool = False) -> list[str]:
    return [
        kind
        for kind, text in planted()
        if text in output and not (contact_shown and kind.startswith(CONTACT))
    ]


def browse_and_live(cookie: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC})
        await until(socket, "live")
        await asyncio_run_in_thread(plant)
        frames = await collect(socket, 4)
        live = [m for f in frames if f["type"] == "batch" for m in f["messages"]]
        await socket.send_json_to({"action": "stop"})
        await socket.send_json_to(
            {"action": "browse", "topic": TOPIC, "start": "oldest", "limit": 200}
        )
        browsed = (await until(socket, "results", timeout=20))["messages"]
        await socket.disconnect()
        return browsed, live

    return run_sockets(scenario)


async def asyncio_run_in_thread(function: Any) -> None:
    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, function)


def details(client: Any, count: int) -> str:
    pages = []
    for offset in range(count):
        page = client.get("/topics/message/", {"topic": TOPIC, "partition": 0, "offset": offset})
        assert page.status_code == 200
        pages.append(html.unescape(page.content.decode()))
    return "\n".join(pages)


def test_every_planted_secret_and_personal_datum_is_masked_on_every_surface(world: Any) -> None:
    browsed, live = browse_and_live(world.cookie("acme-admin"))
    assert len(browsed) == total() and len(live) == total()
    client = world.client("acme-admin")
    export = client.get("/topics/export/", {"topic": TOPIC, "start": "oldest", "limit": 200})
    assert export.status_code == 200 and len(export.content.decode().splitlines()) == total()
    outputs = {
        "browse": json.dumps(browsed, ensure_ascii=False),
        "live": json.dumps(live, ensure_ascii=False),
        "export": export.content.decode(),
        "message page": details(client, total()),
    }
    assert len(planted()) == 35
    for surface, output in outputs.items():
        assert leaks(output) == [], f"{surface} shows {leaks(output)}"
    # What was masked still reads as a message: the amount of detail kept is useful.
    [card] = [m for m in browsed if m["value"].get("data", {}).get("card")]
    assert card["value"]["data"]["card"]["number"] == "••••••4444"


def test_a_tenant_that_opts_out_sees_contact_data_and_nothing_more(world: Any) -> None:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        Tenant.objects.filter(pk=world.acme.pk).update(mask_personal_data=False)
    plant()
    export = world.client("acme-admin").get(
        "/topics/export/", {"topic": TOPIC, "start": "oldest", "limit": 200}
    )
    output = export.content.decode()
    assert leaks(output, contact_shown=True) == []
    shown = [kind for kind, text in planted() if text in output]
    assert shown and all(kind.startswith(CONTACT) for kind in shown)
    assert "maria.lopez@example.com" in output and "+14155550123" in output
