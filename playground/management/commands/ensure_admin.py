"""Create the first admin account if there is none, and say how to sign in."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from playground.secret_files import write_secret


class Command(BaseCommand):
    help = "Create the first admin (username 'admin') if no superuser exists."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        path = settings.VAR_DIR / "admin_password"
        if users.objects.filter(is_superuser=True).exists():
            if path.exists():
                self.stdout.write(f"Sign in as admin with the password in {path}")
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", "", password)
        write_secret(path, password + "\n")  # 0600 from its first byte
        self.stdout.write(f"Created the admin account: username admin, password {password}")
        self.stdout.write(f"(the password is also in {path})")
