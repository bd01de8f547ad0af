"""Renders through the web form and the real engine (tasks run inline when the form commits)."""

import pytest
import srt

from avatars import services as avatar_services
from avatars.models import Avatar
from engine import speech
from renders.models import Render
from tests import media_cache
from tests.integration.helpers import mp4_facts, ready_photo_avatar
from tests.renders.test_renders import SCRIPT, RenderTestCase

pytestmark = pytest.mark.slow


class RenderedTestCase(RenderTestCase):
    def setUp(self):
        super(RenderTestCase, self).setUp()
        with self.captureOnCommitCallbacks(execute=True):
            ready_photo_avatar(team=self.team, user=self.alice)
        self.avatar = Avatar.objects.get()
        assert self.avatar.status == Avatar.Status.READY, self.avatar.error or self.avatar.problems

    def post_render(self, *args, **kwargs):
        with self.captureOnCommitCallbacks(execute=True):
            return super().post_render(*args, **kwargs)

    def test_it_renders_a_script(self):
        response = self.post_render()
        job = Render.objects.get()
        self.assertRedirects(response, f"/renders/{job.pk}/")
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertEqual(job.progress, 100)
        self.assertEqual(job.video.name, f"teams/{self.team.pk}/renders/{job.pk}/video.mp4")
        facts = mp4_facts(job.video)
        spoken = speech.synthesize(SCRIPT, voice="en-us")
        self.assertAlmostEqual(facts["video_seconds"], spoken.duration, delta=1 / facts["fps"] + 1e-6)
        self.assertGreater(facts["audio_rms"], 0.01)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, "<video")
        self.assertContains(page, "Download MP4")
        self.assertEqual(list(job.events.values_list("kind", flat=True)), ["queued", "started", "succeeded"])

    def test_a_script_render_stores_captions_of_its_words(self):
        self.post_render()
        job = Render.objects.get()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertEqual(job.captions_vtt.name, f"teams/{self.team.pk}/renders/{job.pk}/captions.vtt")
        with job.captions_srt.open("rb") as handle:
            cues = list(srt.parse(handle.read().decode("utf-8")))
        self.assertEqual(" ".join(cue.content.replace("\n", " ") for cue in cues), SCRIPT)
        # within the audio: the video lasts as long as the speech, to a frame
        self.assertLessEqual(cues[-1].end.total_seconds(), job.duration + 1 / 25)
        self.assertContains(self.client.get(f"/renders/{job.pk}/"), '<track kind="captions"')
        self.assertEqual(self.client.get(f"/media/{job.captions_vtt.name}")["Content-Type"], "text/vtt")

    def test_it_renders_an_uploaded_voice_track(self):
        with open(media_cache.audio(3.0, "wav"), "rb") as handle:
            self.post_render(driver="audio", script="", audio=handle)
        job = Render.objects.get()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertAlmostEqual(job.duration, 3.0, delta=0.1)

    def test_cancel_then_retry_runs_it(self):
        with self.captureOnCommitCallbacks():
            super().post_render()
        job = Render.objects.get()
        self.client.post(f"/renders/{job.pk}/cancel/")
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/renders/{job.pk}/retry/")
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)


class VideoAvatarRenderTestCase(RenderTestCase):
    def test_it_lip_syncs_a_video_avatar_longer_than_its_footage(self):
        path = media_cache.talking_video(12.0)
        with self.captureOnCommitCallbacks(execute=True):
            avatar_services.avatar_create(
                team=self.team, user=self.alice, name="Talker", gender="female",
                source=self.upload(path, "talk.mp4"),
            )
        avatar = Avatar.objects.get(name="Talker")
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.login(self.alice)
        with open(media_cache.audio(15.0, "wav"), "rb") as handle, self.captureOnCommitCallbacks(execute=True):
            self.client.post("/renders/new/", {
                "avatar": avatar.pk, "title": "Longer than the footage", "driver": "audio", "audio": handle,
                "speed": "1", "volume": "0", "loop_mode": "reverse", "disable_intervals": "0-1",
            })
        job = Render.objects.get()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertAlmostEqual(job.duration, 15.0, delta=0.1)
        self.assertEqual((job.width, job.height), (avatar.width, avatar.height))
