"""Echo takes videos and recordings, and says what it was given: the media path can be tried
on a fresh site with no key (Local takes neither, so a comparison shows the refusal too)."""

from typing import Any

from django.db import migrations


def seed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("playground", "CatalogEntry").objects.filter(key="echo").update(
        video=True, audio=True
    )


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("playground", "CatalogEntry").objects.filter(key="echo").update(
        video=False, audio=False
    )


class Migration(migrations.Migration):
    dependencies = [
        ("playground", "0013_video_audio"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
