from .env import env_int

# Largest webhook body accepted, in bytes; a larger one gets 413 (Content-Length is checked
# before the body is read).
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# Deepest JSON nesting accepted in a webhook body (providers' payloads stay under 10).
WEBHOOK_MAX_JSON_DEPTH = env_int("WEBHOOK_MAX_JSON_DEPTH", 64, minimum=8)
# How long a decrypted signing secret stays in process memory (never on disk); 0 = no cache.
WEBHOOK_SECRET_CACHE_SECONDS = env_int("WEBHOOK_SECRET_CACHE_SECONDS", 60, minimum=0)
# Days a delivery id is remembered for dedupe; providers retry for at most 7 days (Meta).
WEBHOOK_DEDUPE_DAYS = env_int("WEBHOOK_DEDUPE_DAYS", 30, minimum=8)
# Refused, unauthenticated requests (an unsigned or forged webhook delivery, a URL naming no
# connection) one client address (IPv6: one /64) may send per minute; past that its requests
# are refused with 429 before any other work. Never charged to a tenant's own limit.
REFUSALS_PER_SOURCE_PER_MINUTE = env_int("REFUSALS_PER_SOURCE_PER_MINUTE", 300, minimum=1)
