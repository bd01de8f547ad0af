from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from api.models import IdempotentRequest, Upload
from api.tasks import api_sweep
from tests import media_cache
from tests.api.base import ApiTestCase


class SweepTestCase(ApiTestCase):
    def test_it_removes_unused_uploads_a_day_after_expiry_and_old_records(self):
        stale = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        fresh = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        Upload.objects.filter(pk=stale).update(expires_at=timezone.now() - timedelta(hours=25))
        stale_file = Path(self.media_root) / Upload.objects.get(pk=stale).key
        self.assertTrue(stale_file.exists())
        IdempotentRequest.objects.create(api_key=self.key, key="old", fingerprint="x", status_code=201,
                                         created_at=timezone.now() - timedelta(hours=25))
        IdempotentRequest.objects.create(api_key=self.key, key="new", fingerprint="x", status_code=201)
        self.assertEqual(api_sweep(), {"unused_uploads": 1, "used_uploads": 0, "idempotency_records": 1})
        self.assertFalse(stale_file.exists())
        self.assertEqual(list(Upload.objects.values_list("pk", flat=True)), [Upload.objects.get(pk=fresh).pk])
        self.assertEqual(list(IdempotentRequest.objects.values_list("key", flat=True)), ["new"])
