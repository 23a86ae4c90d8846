"""Django admin, one module per subject; importing this package registers them all.

- ``sessions``: sessions, turns and responses (metadata; no prompt text in the lists)
- ``catalog``: the catalog, rate limits, people's own endpoints
- ``credentials`` (form: ``credential_form``): the organisation's and teams' keys, secrets
  write-only; personal keys as metadata only
- ``history``: admin history (Django's LogEntry), read-only
"""

from playground.admin import catalog, credentials, history, sessions

__all__ = ["catalog", "credentials", "history", "sessions"]
