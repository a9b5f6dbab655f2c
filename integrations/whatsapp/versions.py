"""The Graph API versions the WhatsApp client is written and tested for.

Meta publishes a Graph version about twice a year and keeps each for two years (the Graph API
changelog's "Available until"); a version past its date answers every call with an error, so
the list is the versions still available, and a newer one joins it once the client is tested
against it. No Django imports: the settings read this module.
"""

from __future__ import annotations

# version: the date Meta retires it (None: not announced yet), from Meta's Graph API changelog.
SUPPORTED_GRAPH_VERSIONS: dict[str, str | None] = {
    "v21.0": "2027-01-21",
    "v22.0": "2027-05-20",
    "v23.0": "2027-10-08",
    "v24.0": "2028-02-18",
    "v25.0": "2028-07-29",
    "v26.0": None,
}
DEFAULT_GRAPH_VERSION = "v25.0"
