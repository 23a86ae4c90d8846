"""Django admin, one module per subject; importing this package registers them all.

- ``sessions``: sessions, turns and responses (metadata; no prompt text in the lists)
- ``catalog``: the catalog, rate limits, people's own endpoints
"""

from playground.admin import catalog, sessions

__all__ = ["catalog", "sessions"]
