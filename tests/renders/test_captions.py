"""Captions beside a render: stored by the worker with its video, shown and served to members."""

from pathlib import Path
from unittest import mock

from django.conf import settings

from engine import pipeline
from renders.models import Render
from renders.rendering import render_run
from studio import storage
from tests import media_cache
from tests.factories import finished_render
from tests.renders.test_renders import RenderTestCase

FIXTURES = Path(__file__).parent.parent / "fixtures"


class CaptionsPageTestCase(RenderTestCase):
    def test_it_shows_the_captions_track_and_download_links(self):
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True)
        self.login(self.vera, self.team)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(
            page,
            f'<track kind="captions" src="/renders/{job.pk}/captions.vtt" srclang="en-US" '
            'label="English (America)" default>',
            html=True,
        )
        self.assertContains(page, f'href="/media/{job.captions_srt.name}?download">Download SRT</a>')
        self.assertContains(page, f'href="/media/{job.captions_vtt.name}?download">Download VTT</a>')

    def test_burned_in_captions_are_not_shown_twice(self):
        # The picture already carries them: the player's track stays off until asked for.
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True, burn_captions=True)
        self.login(self.alice)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(
            page,
            f'<track kind="captions" src="/renders/{job.pk}/captions.vtt" srclang="en-US" label="English (America)">',
            html=True,
        )
        self.assertContains(page, "script, English (America) — ")

    def test_a_render_without_captions_has_no_track(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        self.login(self.alice)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, "Download MP4")
        self.assertNotContains(page, "<track")
        self.assertNotContains(page, "Download SRT")

    def test_it_serves_the_vtt_as_text_vtt_to_members(self):
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True)
        self.login(self.bob, self.team)
        response = self.client.get(f"/media/{job.captions_vtt.name}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/vtt")
        self.assertTrue(b"".join(response.streaming_content).startswith(b"WEBVTT"))

    def test_captions_download_under_the_renders_title(self):
        job = finished_render(avatar=self.avatar, user=self.alice, title="Spring launch", captions=True)
        self.login(self.alice)
        response = self.client.get(job.srt_download_url)
        self.assertEqual(response["Content-Type"], "application/x-subrip")
        self.assertEqual(response["Content-Disposition"], 'attachment; filename="Spring launch.srt"')

    def test_the_player_track_comes_from_the_studio_itself(self):
        # Same origin whatever the storage: a <track> from an S3 bucket would need CORS.
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True)
        self.login(self.vera, self.team)
        response = self.client.get(f"/renders/{job.pk}/captions.vtt")
        self.assertEqual(response["Content-Type"], "text/vtt; charset=utf-8")
        self.assertTrue(response.content.startswith(b"WEBVTT"))
        self.assertIn("private", response["Cache-Control"])
        plain = finished_render(avatar=self.avatar, user=self.alice, title="No captions")
        self.assertEqual(self.client.get(f"/renders/{plain.pk}/captions.vtt").status_code, 404)
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/renders/{job.pk}/captions.vtt").status_code, 404)

    def test_outsider_gets_404_for_the_captions(self):
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True)
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/media/{job.captions_vtt.name}").status_code, 404)
        self.assertEqual(self.client.get(f"/media/{job.captions_srt.name}?download").status_code, 404)

    def test_deleting_a_render_removes_its_captions(self):
        job = finished_render(avatar=self.avatar, user=self.alice, captions=True)
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/renders/{job.pk}/delete/")
        self.assertFalse((Path(settings.MEDIA_ROOT) / job.captions_vtt.name).exists())
        self.assertFalse((Path(settings.MEDIA_ROOT) / job.captions_srt.name).exists())


def fake_render(*, captions: bool = True, then=None):
    """Stands in for the engine: writes tiny outputs where the request asks, as it would."""

    def render(request, *, progress=None, should_cancel=None):
        output = Path(request.output)
        output.write_bytes((FIXTURES / "clip.mp4").read_bytes())
        Path(request.poster).write_bytes((FIXTURES / "poster.jpg").read_bytes())
        srt = vtt = None
        if captions:
            srt, vtt = output.with_suffix(".srt"), output.with_suffix(".vtt")
            srt.write_bytes((FIXTURES / "captions.srt").read_bytes())
            vtt.write_bytes((FIXTURES / "captions.vtt").read_bytes())
        if then is not None:
            then()
        return pipeline.RenderResult(
            video_path=output, poster_path=Path(request.poster), duration=1.0, width=96, height=96, fps=25.0,
            frame_count=25, srt_path=srt, vtt_path=vtt,
        )

    return render


class CaptionsStorageTestCase(RenderTestCase):
    def setUp(self):
        super().setUp()
        self.job = Render.objects.create(
            team=self.team, avatar=self.avatar, created_by=self.alice, title="t", driver="text",
            script="Hello there.", voice="en-us",
        )
        self.folder = Path(settings.MEDIA_ROOT) / self.job.key_prefix

    def run_job(self, engine) -> None:
        with mock.patch("renders.rendering.pipeline.render", side_effect=engine):
            render_run(str(self.job.pk))
        self.job.refresh_from_db()

    def test_it_stores_the_captions_under_the_renders_prefix(self):
        self.run_job(fake_render())
        self.assertEqual(self.job.status, Render.Status.SUCCEEDED, self.job.error)
        self.assertEqual(self.job.captions_srt.name, f"{self.job.key_prefix}captions.srt")
        self.assertEqual(self.job.captions_vtt.name, f"{self.job.key_prefix}captions.vtt")
        self.assertTrue((self.folder / "captions.vtt").read_text().startswith("WEBVTT"))

    def test_a_render_without_captions_stores_none(self):
        self.run_job(fake_render(captions=False))
        self.assertEqual(self.job.status, Render.Status.SUCCEEDED, self.job.error)
        self.assertEqual((self.job.captions_srt.name, self.job.captions_vtt.name), ("", ""))

    def test_a_failed_upload_leaves_nothing_stored(self):
        real_upload = storage.upload

        def upload(path, key):
            if key.endswith(".vtt"):
                raise RuntimeError("storage went away")
            return real_upload(path, key)

        with mock.patch("studio.storage.upload", side_effect=upload), self.assertRaises(RuntimeError):
            self.run_job(fake_render())
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.FAILED)
        self.assertEqual(sorted(p.name for p in self.folder.glob("*")), [])

    def test_a_render_cancelled_while_storing_leaves_nothing_stored(self):
        def cancel():
            Render.objects.filter(pk=self.job.pk).update(status=Render.Status.CANCELLED)

        self.run_job(fake_render(then=cancel))
        self.assertEqual(self.job.status, Render.Status.CANCELLED)
        self.assertEqual((self.job.video.name, self.job.captions_vtt.name), ("", ""))
        self.assertEqual(sorted(p.name for p in self.folder.glob("*")), [])


class VoiceTrackCaptionsTestCase(RenderTestCase):
    """What the creator asks for on the form reaches the worker, and what it says comes back."""

    def post_voice_track(self, **fields):
        with open(media_cache.audio(3.0, "wav"), "rb") as handle:
            return self.post_render(driver="audio", script="", audio=handle, **fields)

    def test_it_keeps_the_transcript_language_and_caption_style(self):
        self.post_voice_track(
            transcript="  Guten   Abend,\nliebe Freunde. ", language="de", burn_captions="on",
            caption_position="top", caption_size="large", caption_look="box",
        )
        job = Render.objects.get()
        self.assertEqual((job.transcript, job.voice), ("Guten Abend, liebe Freunde.", "de"))
        self.assertEqual(
            (job.burn_captions, job.caption_position, job.caption_size, job.caption_look),
            (True, "top", "large", "box"),
        )

    def test_a_post_without_the_selects_gets_what_the_page_preselects(self):
        self.post_voice_track()
        job = Render.objects.get()
        self.assertEqual((job.voice, job.transcript, job.burn_captions), ("en-us", "", False))
        self.assertEqual((job.caption_position, job.caption_size, job.caption_look), ("bottom", "medium", "outline"))

    def test_it_refuses_a_caption_style_it_does_not_offer(self):
        response = self.post_voice_track(caption_look="comic-sans")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Render.objects.exists())

    def test_the_worker_aligns_the_transcript_and_stores_what_the_engine_said(self):
        self.post_voice_track(transcript="Hello there.", language="en")
        job = Render.objects.get()
        seen = {}

        def engine(request, **kwargs):
            seen.update(transcript=request.transcript, voice=request.voice)
            result = fake_render()(request, **kwargs)
            result.captions_source = "machine"
            result.warnings = ["The transcript doesn't match the voice track, so the mouth follows the audio alone."]
            return result

        with mock.patch("renders.rendering.pipeline.render", side_effect=engine):
            render_run(str(job.pk))
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertEqual(seen, {"transcript": "Hello there.", "voice": "en"})
        self.assertEqual(job.captions_source, "machine")
        self.assertIn("warning", list(job.events.values_list("kind", flat=True)))
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, "doesn&#x27;t match the voice track")
        self.assertContains(page, 'label="English (Great Britain) (machine-transcribed)"')
        self.assertContains(page, "transcribed by machine; check them before you publish")

    def test_a_voice_track_without_captions_says_how_to_get_them(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        Render.objects.filter(pk=job.pk).update(driver="audio", script="", voice="fi")
        self.login(self.alice)
        self.assertContains(self.client.get(f"/renders/{job.pk}/"), "add the voice track's transcript")

    def test_it_refuses_a_transcript_the_voice_track_cannot_hold(self):
        response = self.post_voice_track(transcript=" ".join(["Many more words than three seconds can hold."] * 12))
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "transcript", status_code=400)
        self.assertIn("transcript", response.context["form"].errors)
        self.assertFalse(Render.objects.exists())
