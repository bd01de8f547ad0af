"""A video larger than preparation's cap keeps its full-size master in storage beside the
prepared media, and the avatar offers that size (a 4K upload offers 4K)."""

import av
import pytest

from avatars.models import Avatar
from engine import pipeline
from renders.models import Render
from tests import media_cache
from tests.avatars.test_avatars import AvatarTestCase

pytestmark = pytest.mark.slow


class AvatarMasterTestCase(AvatarTestCase):
    def create(self, *args, **kwargs):
        with self.captureOnCommitCallbacks(execute=True):  # preparation runs inline, on the real engine
            return super().create(*args, **kwargs)

    def test_a_video_over_the_cap_stores_its_master_and_offers_its_size(self):
        # 640×480 over a cap of 320 stands in for 4K over 1,920 (the same code, a fraction of the work)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pipeline, "MAX_PREPARED_LONG_SIDE", 320)
            self.create(media_cache.talking_video(12.0))
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.assertEqual((avatar.width, avatar.height), (320, 240))
        self.assertEqual((avatar.master_width, avatar.master_height, avatar.largest_size), (640, 480, (640, 480)))
        self.assertTrue(avatar.master.name.endswith("master.mp4"))
        with avatar.master.open("rb") as stored, av.open(stored) as container:
            stream = container.streams.video[0]
            self.assertEqual((stream.width, stream.height), (640, 480))
        self.assertIn(avatar.master, avatar.stored_files())

        # 480 lines: more than the 240 of the prepared media, so the render reads the master
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post("/renders/new/", {
                "avatar": avatar.pk, "title": "Sharp", "driver": "text", "script": "Hello there.", "voice": "en-us",
                "speed": "1.0", "volume": "0", "loop_mode": "reverse", "resolution": "480"})
        self.assertEqual(response.status_code, 302)
        job = Render.objects.get()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertEqual((job.width, job.height), (640, 480))
        with job.video.open("rb") as stored, av.open(stored) as container:
            stream = container.streams.video[0]
            self.assertEqual((stream.width, stream.height), (640, 480))

    def test_a_video_within_the_cap_has_no_master(self):
        self.create(media_cache.talking_video(12.0))
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.assertFalse(avatar.master)
        self.assertEqual(avatar.largest_size, (avatar.width, avatar.height))
