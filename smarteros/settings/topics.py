from .env import env_int

# The live topic viewer (telemetry/topics). Concurrent live sockets one operator may hold, and
# that may watch one tenant's topics (across every web process: counted in Redis).
TOPICS_MAX_VIEWERS_PER_USER = env_int("TOPICS_MAX_VIEWERS_PER_USER", 5, minimum=1)
TOPICS_MAX_VIEWERS_PER_TENANT = env_int("TOPICS_MAX_VIEWERS_PER_TENANT", 20, minimum=1)
# Per operator, across web processes: open viewer sockets, browses running at once (a new browse
# on a socket also ends that socket's previous one) and exports running at once.
TOPICS_MAX_SOCKETS_PER_USER = env_int("TOPICS_MAX_SOCKETS_PER_USER", 10, minimum=1)
TOPICS_MAX_BROWSES_PER_USER = env_int("TOPICS_MAX_BROWSES_PER_USER", 3, minimum=1)
TOPICS_MAX_EXPORTS_PER_USER = env_int("TOPICS_MAX_EXPORTS_PER_USER", 2, minimum=1)
# Browse scans one web process runs at once (browse, export, message detail); more wait for a
# slot up to their time budget. Scans decode and mask in Python threads, so more at once would
# starve the event loop of the GIL.
TOPICS_SCANS_PER_PROCESS = env_int("TOPICS_SCANS_PER_PROCESS", 2, minimum=1)
# Largest websocket frame the viewer reads; a larger one is answered with an error frame.
TOPICS_MAX_FRAME_BYTES = env_int("TOPICS_MAX_FRAME_BYTES", 65536, minimum=1024)
# Messages a live socket holds while its browser is slow or paused; beyond, they are counted
# as missed instead of growing the server.
TOPICS_SOCKET_BUFFER = env_int("TOPICS_SOCKET_BUFFER", 2000, minimum=10)
# Frames per second a live socket sends at most (each carries every buffered message up to
# TOPICS_FRAME_MAX_MESSAGES).
TOPICS_FRAMES_PER_SECOND = env_int("TOPICS_FRAMES_PER_SECOND", 20, minimum=1)
TOPICS_FRAME_MAX_MESSAGES = env_int("TOPICS_FRAME_MAX_MESSAGES", 500, minimum=1)
# Browse budgets per request: results, seconds and bytes scanned.
TOPICS_BROWSE_MAX_RESULTS = env_int("TOPICS_BROWSE_MAX_RESULTS", 1000, minimum=1)
TOPICS_BROWSE_SECONDS = env_int("TOPICS_BROWSE_SECONDS", 10, minimum=1)
TOPICS_BROWSE_MAX_BYTES = env_int("TOPICS_BROWSE_MAX_BYTES", 50_000_000, minimum=1024)
# Largest export, in messages.
TOPICS_EXPORT_MAX_MESSAGES = env_int("TOPICS_EXPORT_MAX_MESSAGES", 10000, minimum=1)
# Dead letters one "Replay all" sends back at most (the rest wait for the next one).
TOPICS_REPLAY_ALL_MAX = env_int("TOPICS_REPLAY_ALL_MAX", 500, minimum=1)
