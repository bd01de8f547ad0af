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

    warm_up()
