from .env import env_int

# How far a Clerk (Svix) delivery's svix-timestamp may be from now, either way, before it is
# refused as a replay; Svix's own libraries use five minutes.
CLERK_WEBHOOK_TOLERANCE_SECONDS = env_int("CLERK_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
