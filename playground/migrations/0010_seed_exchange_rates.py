from decimal import Decimal
from typing import Any

from django.db import migrations

# Rough rates for spend limits; admins set their own under "Exchange rates".
RATES = {"CNY": Decimal("0.14"), "EUR": Decimal("1.08")}


def seed(apps: Any, schema_editor: Any) -> None:
    rate = apps.get_model("playground", "ExchangeRate")
    for currency, usd in RATES.items():
        rate.objects.get_or_create(currency=currency, defaults={"usd_per_unit": usd})


class Migration(migrations.Migration):
    dependencies = [("playground", "0009_teams_credentials_quotas")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
