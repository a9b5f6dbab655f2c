"""Masking of secrets and personal data before a value leaves the process: logs, Sentry, and
(through `telemetry.topics.masking`) the topic viewer and its exports. The detectors live here,
once; callers choose whether contact data (e-mail, phone) is masked too.

Three kinds of evidence:
- key names: a value under a key named like a credential (`password`, `api_key`,
  `X-Shopify-Access-Token`, `client_secret`...) is masked whatever its type; under a key named
  like contact data (`phone`, `email`, `wa_id`...) when contact data is masked;
- value formats, anywhere in a string (dict keys too): credentials (our API keys, Stripe,
  Google, Slack, AWS, GitHub, Shopify, Meta, LLM providers, Vault, bearer tokens, JWTs, private
  keys, URL userinfo, `password=...` pairs) and personal data (card numbers passing the Luhn
  check, US social security numbers, IBANs passing mod 97; e-mail and phone numbers when
  contact data is masked);
- declarations (event schemas), applied by the caller through `secret_keys`/`personal_keys`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "••••••"
MAX_DEPTH = 32

# --- key names -------------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A word that is, or contains, one of these names a credential. `tokens` (a count of LLM
# tokens) is not `token`, and `session_id` (an agent session) is not a secret.
_SECRET_WORDS = frozenset(
    {"token", "pass", "pwd", "dsn", "cookie", "cookies", "signature", "otp", "cvv", "cvc", "pin"}
)
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "apikey",
    "credential",
    "authorization",
    "privatekey",
    "accesskey",
    "sessionkey",
    "sessionid",
    "bearer",
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("auth", "key")})
_PERSONAL_WORDS = frozenset({"phone", "mobile", "msisdn", "email", "ssn", "iban", "passport"})
_PERSONAL_PARTS = ("phone", "email", "msisdn")
_PERSONAL_PAIRS = frozenset(
    {("wa", "id"), ("national", "id"), ("tax", "id"), ("e", "mail"), ("date", "birth")}
)


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def _named(found: list[str], words: frozenset[str], parts: tuple[str, ...], pairs: Any) -> bool:
    if any(w in words or any(p in w for p in parts) for w in found):
        return True
    return any((a, b) in pairs for a, b in itertools.pairwise(found)) or any(
        (a, c) in pairs for a, _, c in zip(found, found[1:], found[2:], strict=False)
    )


def key_is_secret(name: Any) -> bool:
    """Whether a key (JSON key, header, form field) names a credential."""
    if not isinstance(name, str):
        return False
    return _key_is_secret(name) if len(name) <= _CACHED_KEY else _key_is_secret.__wrapped__(name)


def key_is_personal(name: Any) -> bool:
    """Whether a key names contact or identity data (phone, e-mail, WhatsApp id, SSN...)."""
    if not isinstance(name, str):
        return False
    if len(name) > _CACHED_KEY:
        return _key_is_personal.__wrapped__(name)
    return _key_is_personal(name)


# Keys repeat from message to message: each name is judged once (names of a sane length only,
# so the cache stays small).
_CACHED_KEY = 128


@functools.lru_cache(maxsize=8192)
def _key_is_secret(name: str) -> bool:
    found = _words(name)
    # accesstoken, csrftoken, idtoken: written as one word
    return any(w.endswith("token") for w in found) or _named(
        found, _SECRET_WORDS, _SECRET_PARTS, _SECRET_PAIRS
    )


@functools.lru_cache(maxsize=8192)
def _key_is_personal(name: str) -> bool:
    return _named(_words(name), _PERSONAL_WORDS, _PERSONAL_PARTS, _PERSONAL_PAIRS)


# --- value formats ---------------------------------------------------------------------------

# Each detector runs only on text holding one of its triggers (a plain substring test, much
# cheaper than a regex scan): the live tail masks thousands of messages a second.
_CREDENTIALS: list[tuple[tuple[str, ...], str]] = [
    (
        ("-----BEGIN",),
        r"(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)",
    ),
    (
        ("://",),
        r"(?P<userinfo>\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://)[^\s/@:?#]{1,256}(?::[^\s/@?#]{0,256})?@",
    ),
    (
        ("earer", "asic", "oken"),
        r"(?P<bearer>\b(?:[Bb]earer|[Bb]asic|[Tt]oken)\s+)[A-Za-z0-9._~+/\-]{8,}=*",
    ),
    # `password=hunter2`, `"client_secret": "..."` inside free text (a log line, a query string)
    (
        ("password", "passwd", "secret", "token", "api", "credential"),
        r"(?P<pair>(?:password|passwd|secret|token(?!s)|api[_\-]?key|credential)[\w\-]{0,40}"
        r"[\"']?\s*[=:]\s*[\"']?)(?!••)[^\s\"'&,;}]{4,}",
    ),
    (("eyJ",), r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),  # JWT
    (("sos_",), r"\bsos_[a-z]+_[A-Za-z0-9_\-]{8,}"),  # SmarterOS API keys
    (("_live_", "_test_"), r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"),  # Stripe
    (("whsec_",), r"\bwhsec_[A-Za-z0-9+/=]{10,}"),  # Stripe / Clerk (Svix) signing secrets
    (("AIza", "ya29."), r"\b(?:AIza[0-9A-Za-z_\-]{30,}|ya29\.[0-9A-Za-z_\-]{20,})"),  # Google
    (
        ("xox", "hooks.slack"),
        r"\b(?:xox[abposr]-[A-Za-z0-9\-]{10,}|hooks\.slack\.com/services/[A-Za-z0-9/]{20,})",
    ),  # Slack tokens and incoming webhooks
    (("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    # An AWS secret access key is 40 characters of base64 with nothing to recognise it by but
    # what sits before it.
    (
        ("aws", "AWS", "Aws"),
        r"(?P<awssecret>(?i:aws)[\w\-]{0,30}[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+]{40}\b",
    ),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
    ),  # GitHub
    (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20}"),  # GitLab
    (("shpat_", "shpca_", "shppa_", "shpss_"), r"\bshp(?:at|ca|pa|ss)_[A-Fa-f0-9]{16,}"),  # Shopify
    (("sk-",), r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic and friends
    (("EAA",), r"\bEAA[A-Za-z0-9]{20,}"),  # Meta access tokens
    (("s.",), r"\b(?:hvs|hvb|s)\.[A-Za-z0-9]{20,}"),  # Vault tokens
]
_ALWAYS_PERSONAL = [
    # Not after `/`, `.` or `-`: digits in a path or an id (gid://shopify/Order/4...) are no card.
    r"(?P<card>(?<![\w/.\-])(?:\d[ \-]?){12,18}\d(?![\w\-]))",
    r"(?P<ssn>(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-]))",
    r"(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)",
]
_CONTACT = [
    r"(?P<email>\b[A-Za-z0-9._%+\-]{1,64})@"
    r"(?P<domain>[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24})\b",
    # E.164 (`+14155550123`) or a number written with separators (`(415) 555-0123`); a bare run
    # of digits is an id unless its key or its schema says phone.
    r"(?P<phone>(?<![\w+])\+[1-9][\d \-().]{5,18}\d(?!\w)"
    r"|(?<![\w+])\(?\d{3}\)?[ \-.]\d{3}[ \-.]\d{4}(?!\w))",
]
_CREDENTIAL_RES = [(triggers, re.compile(pattern)) for triggers, pattern in _CREDENTIALS]
# Most text holds no trigger at all: one scan for any of them says so.
_ANY_TRIGGER = re.compile("|".join(re.escape(t) for triggers, _ in _CREDENTIALS for t in triggers))
_NO_DIGITS = str.maketrans("", "", "0123456789")
_PERSONAL_RE = re.compile("|".join(_ALWAYS_PERSONAL))
_CONTACT_RE = re.compile("|".join(_CONTACT))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# Issuer prefixes and lengths of the card networks (Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay): a 13-digit millisecond timestamp that happens to pass Luhn is no card.
_CARD_PREFIXES = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
    r"|3[47]\d{13}|(?:6011|65\d\d|64[4-9]\d|35(?:2[89]|[3-8]\d)|62\d\d)\d{12,15}"
    r"|3(?:0[0-5]|[689]\d)\d{11,16})$"
)


def _card(digits: str) -> bool:
    return bool(_CARD_PREFIXES.match(digits)) and _luhn(digits)


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def mask_phone(number: str) -> str:
    """A phone number with its country prefix and last two digits kept, for recognising it."""
    digits = _digits(number)
    if len(digits) < 7:
        return MASK
    lead = "+" if number.lstrip().startswith("+") else ""
    return lead + digits[:2] + "•" * (len(digits) - 4) + digits[-2:]


def _credential(match: re.Match[str]) -> str:
    for keep, kept in match.groupdict().items():
        if kept and keep != "pem":
            return kept + MASK + ("@" if keep == "userinfo" else "")
    return MASK


def _personal(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.lastgroup == "card":
        digits = _digits(text)
        if _card(digits):
            return "•" * 6 + digits[-4:]
        return text
    if match.lastgroup == "iban":
        return MASK if _iban_valid(text) else text
    return MASK


def _contact(match: re.Match[str]) -> str:
    if match.group("email"):
        return MASK + "@" + match.group("domain")
    return mask_phone(match.group(0))


def scrub_text(text: str, *, contact: bool = False) -> str:
    """`text` with every credential, card number and national id masked; with `contact`,
    e-mail addresses and phone numbers too."""
    if len(text) < 6:  # shorter than anything a detector finds
        return text
    if _ANY_TRIGGER.search(text):
        for triggers, pattern in _CREDENTIAL_RES:
            if any(trigger in text for trigger in triggers):
                text = pattern.sub(_credential, text)
    digits = len(text) - len(text.translate(_NO_DIGITS))
    if digits >= 8:  # a card, an SSN or an IBAN has more
        text = _PERSONAL_RE.sub(_personal, text)
    if contact and ("@" in text or digits >= 7):
        text = _CONTACT_RE.sub(_contact, text)
    return text


def _masked_whole(value: Any, *, phone_like: bool) -> Any:
    if value is None or isinstance(value, bool) or value == "":
        return value  # nothing to hide, and "not set" stays visible
    if phone_like and isinstance(value, str | int) and 7 <= len(_digits(str(value))) <= 15:
        return mask_phone(str(value))
    return MASK


def scrub_value(
    value: Any,
    *,
    contact: bool = False,
    secret_keys: Iterable[str] = (),
    personal_keys: Iterable[str] = (),
) -> Any:
    """A JSON-like value with secrets masked at any depth: values under credential-named or
    `secret_keys` keys whatever their type, values under contact-named or `personal_keys` keys
    (with `contact`), dict keys and strings by format. Deeper than MAX_DEPTH is masked whole."""
    return _walk(value, contact, frozenset(secret_keys), frozenset(personal_keys), 0)


def _walk(
    value: Any, contact: bool, secret: frozenset[str], personal: frozenset[str], depth: int
) -> Any:
    if depth > MAX_DEPTH:
        return MASK
    if isinstance(value, str):
        return scrub_text(value, contact=contact)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            shown = scrub_text(key, contact=contact) if isinstance(key, str) else key
            while shown in out:  # two masked keys must not overwrite each other
                shown = f"{shown}#"
            if key in secret or key_is_secret(key):
                out[shown] = _masked_whole(item, phone_like=False)
            elif contact and (key in personal or key_is_personal(key)):
                out[shown] = _masked_whole(item, phone_like=True)
            else:
                out[shown] = _walk(item, contact, secret, personal, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_walk(item, contact, secret, personal, depth + 1) for item in value]
    return value


def scrub_mapping(data: Any) -> Any:
    """For Sentry events: credentials, card numbers and national ids masked at any depth."""
    return scrub_value(data)
