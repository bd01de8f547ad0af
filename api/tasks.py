from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from api.idempotency import idempotency_sweep
from api.models import Upload
from studio.storage import delete_quietly

# A received file waits this long past its credential's expiry for the request that uses it.
UNUSED_KEPT_FOR = timedelta(hours=24)
USED_ROWS_KEPT_FOR = timedelta(days=7)


@shared_task
def api_sweep() -> dict[str, int]:
    """Remove uploads nobody used (and their files), old used-upload rows and idempotency records."""
    now = timezone.now()
    unused = list(
        Upload.objects.filter(expires_at__lt=now - UNUSED_KEPT_FOR)
        .exclude(status=Upload.Status.USED)
        .values_list("pk", "key")
    )
    Upload.objects.filter(pk__in=[pk for pk, _ in unused]).delete()
    # S3 mode never learns whether a client's POST arrived, so every unused key is removed.
    delete_quietly([key for _, key in unused])
    used, _ = Upload.objects.filter(status=Upload.Status.USED, used_at__lt=now - USED_ROWS_KEPT_FOR).delete()
    return {"unused_uploads": len(unused), "used_uploads": used, "idempotency_records": idempotency_sweep()}
