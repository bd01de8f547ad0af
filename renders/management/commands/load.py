"""`make load`: the render status page under 100 polls a second, served as in production.

What runs, all on this machine and in a throw-away VAR_DIR (`var/load`):
- gunicorn serving the studio (`--workers 3`, the production settings: DEBUG=0);
- the embedded broker and one Celery worker (concurrency 1, under the idle CPU scheduling
  class, as the README recommends for workers beside a web server) working through twelve queued renders of
  a prepared avatar, so one render is running for the whole measurement;
- a bounded, open-loop load generator on 127.0.0.1: one HTMX status poll every 1/rate
  seconds for `--seconds`, at most `--in-flight` outstanding, signed in as a team member.

It prints p50/p95/p99 latency, errors and the load average, and writes them to
docs/performance.md. A figure measured on a busy machine is not comparable: the load average
before the run is recorded beside it.
"""

import asyncio
import io
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from PIL import Image
from skimage import data

from avatars import services as avatar_services
from avatars.models import Avatar
from renders import services as render_services
from renders.models import Render
from studio.models import Team
from studio.services import user_create

TARGET_P99_MS = 50.0
RENDERS = 12  # each a minute or two of speech: enough to keep one running past the measurement
SCRIPT = (
    "Thank you for joining this product update. Today we look at what changed this quarter, "
    "why it matters for the teams that use it every day, and what comes next. "
) * 12
REPORT = settings.BASE_DIR / "docs" / "performance.md"


class Command(BaseCommand):
    help = "Measure the status page's latency at 100 polls/s under gunicorn while a render runs."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=100.0, help="polls per second")
        parser.add_argument("--seconds", type=float, default=60.0)
        parser.add_argument("--in-flight", type=int, default=64, help="most requests outstanding at once")
        parser.add_argument("--no-report", action="store_true", help="print only; leave docs/ alone")

    def handle(self, *args, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request at INFO
        if Path(settings.VAR_DIR).name != "load":
            raise CommandError("Run this through `make load`: it needs its own VAR_DIR (var/load) to wipe.")
        embedded = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
        if not embedded or settings.REDIS_URL or settings.AWS_STORAGE_BUCKET_NAME:
            # It empties the database and runs a worker on the queues: never on a real deployment.
            raise CommandError("Unset DATABASE_URL, REDIS_URL and AWS_STORAGE_BUCKET_NAME: `make load` runs on "
                               "the embedded stack in var/load only.")
        shutil.rmtree(settings.VAR_DIR / "media", ignore_errors=True)
        call_command("migrate", verbosity=0)
        call_command("flush", interactive=False, verbosity=0)
        port = _free_port()
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": settings.SECRET_KEY, "SECURE_SSL_REDIRECT": "0",
               "SESSION_COOKIE_SECURE": "0", "ALLOWED_HOSTS": "127.0.0.1"}
        processes = [
            _start(["manage.py", "embedded_broker"], env),
            _start(["-m", "celery", "-A", "studio", "worker", "--pool", "solo", "--concurrency", "1",
                    "-Q", "default,prepare,render", "--loglevel", "WARNING"], env, idle=True),
            _start(["-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3",
                    "--log-level", "warning"], env),
        ]
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base)
            poll_path, cookie = self._prepare_studio()
            _wait_for_a_running_render()
            load_before = os.getloadavg()
            latencies, errors, states = asyncio.run(
                _drive(base + poll_path, cookie, rate=options["rate"], seconds=options["seconds"],
                       in_flight=options["in_flight"])
            )
            load_after = os.getloadavg()
            running_at_end = Render.objects.filter(status=Render.Status.RUNNING).exists()
        finally:
            for process in reversed(processes):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        result = _summary(latencies, errors, states, options, load_before, load_after, running_at_end)
        self.stdout.write(result["table"])
        if not options["no_report"]:
            REPORT.write_text(result["markdown"])
            self.stdout.write(f"written to {REPORT.relative_to(settings.BASE_DIR)}")

    def _prepare_studio(self) -> tuple[str, str]:
        """A member, a photo avatar prepared by the worker, and twelve queued renders."""
        user = user_create(username="load", password="load-test-password")
        team = Team.objects.get(memberships__user=user)
        photo = io.BytesIO()
        Image.fromarray(data.astronaut()).save(photo, format="PNG")
        avatar = avatar_services.avatar_create(
            team=team, user=user, name="Presenter", gender="female",
            source=SimpleUploadedFile("presenter.png", photo.getvalue()),
        )
        deadline = time.monotonic() + 120
        while not Avatar.objects.filter(pk=avatar.pk, status__in=Avatar.TERMINAL).exists():
            if time.monotonic() > deadline:
                raise CommandError("The worker did not prepare the load avatar within 2 minutes.")
            time.sleep(0.5)
        avatar.refresh_from_db()
        if avatar.status != Avatar.Status.READY:
            raise CommandError(f"The load avatar did not prepare: {avatar.error or avatar.problems}")
        renders = [
            render_services.render_create(
                team=team, user=user, avatar=avatar, title=f"Load {n}", driver="text", script=SCRIPT,
                voice="en-us+f3",
            )
            for n in range(RENDERS)
        ]
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["team_id"] = team.pk
        session.create()
        return f"/renders/{renders[-1].pk}/", session.session_key


def _start(args: list[str], env: dict, *, idle: bool = False) -> subprocess.Popen:
    command = [sys.executable, *args]
    if idle:
        # SCHED_IDLE: the render takes only CPU time no request wants, as the README advises.
        command = ["chrt", "--idle", "0", *command]
    return subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/accounts/login/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise CommandError("gunicorn did not start within 60 s")


def _wait_for_a_running_render() -> None:
    deadline = time.monotonic() + 60
    while not Render.objects.filter(status=Render.Status.RUNNING).exists():
        if time.monotonic() > deadline:
            raise CommandError("the worker did not start a render within 60 s")
        time.sleep(0.2)
    time.sleep(2)  # past the render's start-up, into its frames


async def _drive(url: str, session_key: str, *, rate: float, seconds: float, in_flight: int):
    """Open-loop: requests start on schedule whether or not earlier ones have answered.

    A bare HTTP/1.1 client on asyncio streams rather than a full-featured one: on two shared
    cores the generator's own CPU time would otherwise show up as the server's latency.
    """
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nHX-Request: true\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={session_key}\r\nConnection: close\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[str] = []
    states: dict[int, int] = {}
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 10)
                writer.write(request)
                response = await asyncio.wait_for(reader.read(), 10)  # the server closes when done
                writer.close()
            except (OSError, asyncio.TimeoutError) as error:
                errors.append(type(error).__name__)
                return
            latencies.append((time.perf_counter() - started) * 1000)
            status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
            states[status] = states.get(status, 0) + 1
            if status not in (200, 286):
                errors.append(f"HTTP {status}")

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, errors, states


def _summary(latencies, errors, states, options, load_before, load_after, running_at_end) -> dict:
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")

    p50, p95, p99 = percentile(0.50), percentile(0.95), percentile(0.99)
    met = p99 < TARGET_P99_MS and not errors
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("requests", f"{len(latencies) + len(errors):,} at {options['rate']:g}/s for {options['seconds']:g} s"),
        ("p50", f"{p50:.1f} ms"),
        ("p95", f"{p95:.1f} ms"),
        ("p99", f"{p99:.1f} ms (target < {TARGET_P99_MS:g} ms: {'met' if met else 'missed'})"),
        ("mean", f"{statistics.fmean(ordered):.1f} ms" if ordered else "—"),
        ("errors", f"{len(errors)}" + (f" ({', '.join(sorted(set(errors)))})" if errors else "")),
        ("answers", ", ".join(f"{code}: {count}" for code, count in sorted(states.items()))),
        ("load average before / after (1 min)", f"{load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"),
        ("a render was running at the end", "yes" if running_at_end else "no"),
    ]
    table = "\n".join(f"{name:>38}  {value}" for name, value in rows)
    markdown = "\n".join(
        [
            "# Performance: the status page under load",
            "",
            "Made by `make load` (`renders/management/commands/load.py`); run it again after changing",
            "anything on the status page's path, and on a quiet machine (the load average is recorded).",
            "",
            "gunicorn (3 workers, `DEBUG=0`) serves the studio on SQLite; a Celery worker under the idle",
            "CPU scheduling class (`chrt --idle 0`) renders photo avatars the whole time; an open-loop",
            "generator on 127.0.0.1 polls one render's HTMX status partial, signed in, as the page does.",
            "",
            f"Measured {now}.",
            "",
            "| figure | value |",
            "|---|---|",
            *[f"| {name} | {value} |" for name, value in rows],
            "",
        ]
    )
    return {"table": table, "markdown": markdown}
