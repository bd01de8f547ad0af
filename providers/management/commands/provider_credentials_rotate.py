from django.core.management.base import BaseCommand

from providers.services import provider_accounts_rotate


class Command(BaseCommand):
    help = "Re-encrypt every provider account's credentials under the first PROVIDER_CREDENTIALS_KEYS key."

    def handle(self, *args, **options) -> None:
        count = provider_accounts_rotate()
        self.stdout.write(f"{count} account(s) re-encrypted under the newest key.")
