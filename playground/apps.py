from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class PlaygroundConfig(AppConfig):
    name = "playground"
    verbose_name = "Playground"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from playground.catalog import forget_catalog, forget_limits
        from playground.models import CatalogEntry, ExchangeRate, Quota, RateLimit
        from playground.quotas import forget_quotas, forget_rates

        post_save.connect(forget_catalog, sender=CatalogEntry, dispatch_uid="catalog-save")
        post_delete.connect(forget_catalog, sender=CatalogEntry, dispatch_uid="catalog-delete")
        post_save.connect(forget_limits, sender=RateLimit, dispatch_uid="limits-save")
        post_delete.connect(forget_limits, sender=RateLimit, dispatch_uid="limits-delete")
        post_save.connect(forget_quotas, sender=Quota, dispatch_uid="quotas-save")
        post_delete.connect(forget_quotas, sender=Quota, dispatch_uid="quotas-delete")
        post_save.connect(forget_rates, sender=ExchangeRate, dispatch_uid="rates-save")
        post_delete.connect(forget_rates, sender=ExchangeRate, dispatch_uid="rates-delete")
