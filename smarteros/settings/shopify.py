from .env import env_choice, env_float, env_int

# A THROTTLED answer or an HTTP 429 is waited out (the bucket's restore rate, or Retry-After)
# and retried this many times; a wait longer than the maximum is not made: the caller is told
# when to retry instead.
SHOPIFY_THROTTLE_RETRIES = env_int("SHOPIFY_THROTTLE_RETRIES", 3, minimum=0)
SHOPIFY_THROTTLE_MAX_WAIT_SECONDS = env_float("SHOPIFY_THROTTLE_MAX_WAIT_SECONDS", 10.0)
# Seconds between two looks at a running bulk operation (the catalogue export).
SHOPIFY_BULK_POLL_SECONDS = env_float("SHOPIFY_BULK_POLL_SECONDS", 2.0)
# A catalogue sync commits its products, and its checkpoint, this many at a time.
SHOPIFY_SYNC_BATCH_SIZE = env_int("SHOPIFY_SYNC_BATCH_SIZE", 200, minimum=1)
# How an order made by shopify_create_order claims stock, unless the call says otherwise: one of
# integrations.shopify.orders.InventoryBehaviour. Shopify's own default (bypass) leaves stock as
# it was.
SHOPIFY_ORDER_INVENTORY_BEHAVIOUR = env_choice(
    "SHOPIFY_ORDER_INVENTORY_BEHAVIOUR",
    "decrement_obeying_policy",
    choices=("bypass", "decrement_ignoring_policy", "decrement_obeying_policy"),
)
