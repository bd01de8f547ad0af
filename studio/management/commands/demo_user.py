import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from studio.services import user_create


class Command(BaseCommand):
    help = "Create the demo account (once) and print its login."

    def handle(self, *args, **options):
        password_file = settings.VAR_DIR / "demo-password.txt"
        username = settings.DEMO_USERNAME
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(9)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
            if user is None:
                user = user_create(username=username, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        password = password_file.read_text().strip()
        line = "=" * 64
        self.stdout.write(
            f"{line}\n  Avatar Studio: http://localhost:{os.getenv('WEB_PORT', '8000')}/\n"
            f"  Demo login:    {username} / {password}   (also admin at /admin/)\n{line}"
        )
