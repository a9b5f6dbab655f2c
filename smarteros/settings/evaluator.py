from .env import env_int

# The bounded evaluator of user expressions (CEL filters), smarteros/infra/evaluator. Worker
# processes per web process; CPU budget per message (milliseconds) and per request (one browse,
# one export, one live batch, in milliseconds); memory per worker (MB); how long a request waits
# for a free worker (seconds).
EVALUATOR_PROCESSES = env_int("EVALUATOR_PROCESSES", 2, minimum=1)
EVALUATOR_MESSAGE_MS = env_int("EVALUATOR_MESSAGE_MS", 100, minimum=1)
EVALUATOR_REQUEST_MS = env_int("EVALUATOR_REQUEST_MS", 3000, minimum=1)
EVALUATOR_MEMORY_MB = env_int("EVALUATOR_MEMORY_MB", 1024, minimum=64)
EVALUATOR_WAIT_SECONDS = env_int("EVALUATOR_WAIT_SECONDS", 10, minimum=1)
