from django.db.models.signals import post_delete
from django.dispatch import receiver

from providers.models import RemoteJob
from studio.storage import delete_quietly


@receiver(post_delete, sender=RemoteJob)
def remote_job_files_removed(sender, instance: RemoteJob, **kwargs) -> None:
    # The spoken script is not one of the render's own files, so render_delete does not know it.
    if instance.speech:
        delete_quietly([instance.speech.name])
