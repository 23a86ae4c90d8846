"""The playground's rows, by what they are about: sessions (what people compare), the
catalog (what they can pick), teams, credentials (the key vault) and quotas (spending)."""

from playground.models.catalog import (
    CatalogEntry,
    Currency,
    CustomEndpoint,
    RateLimit,
    validate_provider,
)
from playground.models.credentials import Credential, Scope
from playground.models.quotas import ExchangeRate, Quota, QuotaCounter, QuotaScope, UsageEntry
from playground.models.sessions import ACTIVE_STATUSES, Pane, Response, Session, Status, Turn
from playground.models.teams import MANAGING_ROLES, ActiveTeam, Membership, Role, Team

__all__ = [
    "ACTIVE_STATUSES",
    "MANAGING_ROLES",
    "ActiveTeam",
    "CatalogEntry",
    "Credential",
    "Currency",
    "CustomEndpoint",
    "ExchangeRate",
    "Membership",
    "Pane",
    "Quota",
    "QuotaCounter",
    "QuotaScope",
    "RateLimit",
    "Response",
    "Role",
    "Scope",
    "Session",
    "Status",
    "Team",
    "Turn",
    "UsageEntry",
    "validate_provider",
]
