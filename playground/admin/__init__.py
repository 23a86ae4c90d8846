"""Django admin, one module per subject; importing this package registers them all.

- ``sessions``: sessions, turns and responses (metadata; no prompt text in the lists)
- ``catalog``: the catalog, rate limits, people's own endpoints
- ``credentials`` (form: ``credential_form``): the organisation's and teams' keys, secrets
  write-only; personal keys as metadata only
- ``teams``: teams, their members, the team's quota
- ``quotas`` (forms: ``quota_forms``): quotas, exchange rates, quota counters
- ``people``: Django's user admin with the person's quota
- ``usage``: the usage ledger, read-only, with totals
- ``history``: admin history (Django's LogEntry), read-only
- ``sharing``: the site policy (one row) and share links, read-only, with Revoke

The admin's sign-in counts failed tries as the site's does (playground/signin.py).
"""

from django.contrib import admin as django_admin

from playground.admin import (
    catalog,
    credentials,
    history,
    people,
    quotas,
    sessions,
    sharing,
    teams,
    usage,
)
from playground.signin import CountedAdminSignIn

django_admin.site.login_form = CountedAdminSignIn

__all__ = [
    "catalog",
    "credentials",
    "history",
    "people",
    "quotas",
    "sessions",
    "sharing",
    "teams",
    "usage",
]
