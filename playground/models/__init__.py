"""The playground's rows, by what they are about: sessions (what people compare), sharing
(links, comparison sets), the catalog (what they can pick), teams, credentials (the key vault)
and quotas (spending)."""

from playground.models.catalog import (
    CatalogEntry,
    Currency,
    CustomEndpoint,
    RateLimit,
    validate_provider,
)
from playground.models.credentials import Credential, Scope
from playground.models.media import MediaFile
from playground.models.quotas import ExchangeRate, Quota, QuotaCounter, QuotaScope, UsageEntry
from playground.models.sessions import (
    ACTIVE_STATUSES,
    ContextPolicy,
    Pane,
    Response,
    Session,
    Status,
    Turn,
)
from playground.models.sharing import Audience, ComparisonSet, ShareLink, SitePolicy
from playground.models.teams import MANAGING_ROLES, ActiveTeam, Membership, Role, Team

__all__ = [
    "ACTIVE_STATUSES",
    "MANAGING_ROLES",
    "ActiveTeam",
    "Audience",
    "CatalogEntry",
    "ComparisonSet",
    "ContextPolicy",
    "Credential",
    "Currency",
    "CustomEndpoint",
    "ExchangeRate",
    "MediaFile",
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
    "ShareLink",
    "SitePolicy",
    "Status",
    "Team",
    "Turn",
    "UsageEntry",
    "validate_provider",
]
