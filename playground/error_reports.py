"""What an error report (the debug page with DEBUG on, the admins' error mail) shows."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# A URL with a password in it: scheme://user:password@host (redis://:pw@…, postgres://…).
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


class SecretsFilter(SafeExceptionReporterFilter):
    """Django's filter (settings and headers named like keys, tokens, secrets and passwords
    are hidden), and any value holding a URL with a password, whatever its name."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and _URL_WITH_PASSWORD.search(cleansed):
            return self.cleansed_substitute
        return cleansed
