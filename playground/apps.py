from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class PlaygroundConfig(AppConfig):
    name = "playground"
    verbose_name = "Playground"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from playground import shared_caches
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
        shared_caches.register("credentials", forget_keyed_providers)
        shared_caches.register("teams", forget_active_teams)
        shared_caches.register("quotas", forget_quotas)
        shared_caches.register("rates", forget_rates)
        for model, name in (
            (Credential, "credentials"),
            (ActiveTeam, "teams"),
            (Quota, "quotas"),
            (ExchangeRate, "rates"),
        ):

            def changed(*_: Any, name: str = name, **__: Any) -> None:
                shared_caches.changed(name)

            post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"{name}-save")
            post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"{name}-delete")
