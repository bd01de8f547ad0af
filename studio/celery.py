import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_the_engine(**_) -> None:
    # In each pool process, after the fork: MediaPipe's threads would not survive one.
    from engine.pipeline import warm_up

    try:
        warm_up()
    except Exception:
        # A pool process that fails here is restarted over and over; the job that needs what
        # did not load fails with its own message instead.
        logging.getLogger(__name__).exception("The engine could not warm up; jobs will load it themselves.")
