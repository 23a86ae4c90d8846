from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class PlaygroundConfig(AppConfig):
    name = "playground"
    verbose_name = "Playground"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from playground.catalog import forget_catalog, forget_limits
        from playground.credentials import forget_keyed_providers
        from playground.models import (
            ActiveTeam,
            CatalogEntry,
            Credential,
            ExchangeRate,
            Quota,
            RateLimit,
        )
        from playground.quotas import forget_quotas, forget_rates
        from playground.teams import forget_active_teams

        post_save.connect(forget_catalog, sender=CatalogEntry, dispatch_uid="catalog-save")
        post_delete.connect(forget_catalog, sender=CatalogEntry, dispatch_uid="catalog-delete")
        post_save.connect(forget_limits, sender=RateLimit, dispatch_uid="limits-save")
        post_delete.connect(forget_limits, sender=RateLimit, dispatch_uid="limits-delete")
        post_save.connect(forget_quotas, sender=Quota, dispatch_uid="quotas-save")
        post_delete.connect(forget_quotas, sender=Quota, dispatch_uid="quotas-delete")
        post_save.connect(forget_rates, sender=ExchangeRate, dispatch_uid="rates-save")
        post_delete.connect(forget_rates, sender=ExchangeRate, dispatch_uid="rates-delete")
        for model, forget, name in (
            (Credential, forget_keyed_providers, "credentials"),
            (ActiveTeam, forget_active_teams, "active-teams"),
        ):
            post_save.connect(forget, sender=model, dispatch_uid=f"{name}-save")
            post_delete.connect(forget, sender=model, dispatch_uid=f"{name}-delete")
