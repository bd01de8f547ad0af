import io
import wave

from django.core.files.uploadedfile import SimpleUploadedFile

from renders.models import Render
from tests import media_cache
from tests.base import BaseTestCase
from tests.factories import finished_render, ready_avatar, store_fixture

SCRIPT = "Hello there. This is a short test of the studio."


class RenderTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice)

    def post_render(self, user=None, team=None, **fields):
        """Post the render form; the job it queues is not run (see tests/integration)."""
        self.login(user or self.alice, team)
        data = {
            "avatar": self.avatar.pk,
            "title": "Welcome",
            "driver": "text",
            "script": SCRIPT,
            "voice": "en-us",
            "speed": "1.0",
            "volume": "0",
            "loop_mode": "reverse",
            **fields,
        }
        with self.captureOnCommitCallbacks() as self.queued:
            return self.client.post("/renders/new/", data)


class RenderCreateTestCase(RenderTestCase):
    def test_it_queues_a_script(self):
        response = self.post_render()
        job = Render.objects.get()
        self.assertRedirects(response, f"/renders/{job.pk}/")
        self.assertEqual((job.status, job.driver, job.script, job.voice), ("queued", "text", SCRIPT, "en-us"))
        self.assertEqual(len(self.queued), 1)
        self.assertEqual(list(job.events.values_list("kind", flat=True)), ["queued"])

    def test_it_stores_an_uploaded_voice_track_under_a_generated_key(self):
        with open(media_cache.audio(3.0, "wav"), "rb") as handle:
            self.post_render(driver="audio", script="", audio=handle)
        job = Render.objects.get()
        self.assertEqual(job.audio.name, f"teams/{self.team.pk}/renders/{job.pk}/voice.wav")
        self.assertAlmostEqual(job.audio_duration, 3.0, delta=0.05)

    def test_it_stores_audio_the_sniffer_misses_under_what_ffmpeg_read(self):
        mp3 = media_cache.audio(3.0, "mp3").read_bytes()
        upload = SimpleUploadedFile("voice.bin", b"\0" * 64 + mp3, content_type="application/octet-stream")
        response = self.post_render(driver="audio", script="", audio=upload)
        job = Render.objects.get()
        self.assertRedirects(response, f"/renders/{job.pk}/")
        self.assertEqual(job.audio.name, f"teams/{self.team.pk}/renders/{job.pk}/voice.mp3")

    def test_it_refuses_half_a_second_of_audio(self):
        with open(media_cache.audio(0.5, "wav"), "rb") as handle:
            response = self.post_render(driver="audio", script="", audio=handle)
        self.assertContains(response, "The audio is 0.5 s long; a voice track needs 1 s to 10 min", status_code=400)
        self.assertFalse(Render.objects.exists())

    def test_it_refuses_an_empty_script(self):
        response = self.post_render(script="   ")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Render.objects.exists())

    def test_it_refuses_a_script_over_2000_characters(self):
        response = self.post_render(script="word " * 500)
        self.assertContains(response, "2,000", status_code=400)

    def test_it_refuses_speed_out_of_range(self):
        response = self.post_render(speed="2.0")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Render.objects.exists())

    def test_it_lists_renders_with_status_badges(self):
        finished_render(avatar=self.avatar, user=self.alice)
        self.login(self.alice)
        response = self.client.get("/renders/")
        self.assertContains(response, "Welcome")
        self.assertContains(response, "status-succeeded")

    def test_a_finished_render_plays_and_downloads(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        self.login(self.alice)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, "<video")
        self.assertContains(page, "Download MP4")


class RenderFormTestCase(RenderTestCase):
    def test_it_preselects_the_avatar_and_a_matching_voice(self):
        self.login(self.alice)
        response = self.client.get(f"/renders/new/?avatar={self.avatar.pk}")
        self.assertContains(response, f'<option value="{self.avatar.pk}" selected data-voice="en-us+f3" data-kind="photo">')
        self.assertContains(response, '<option value="en-us+f3" selected>')

    def test_it_marks_each_avatar_with_its_kind_for_the_video_only_options(self):
        talker = ready_avatar(team=self.team, user=self.alice, name="Talker", kind="video")
        self.login(self.alice)
        response = self.client.get("/renders/new/")
        self.assertContains(response, f'<option value="{talker.pk}" data-voice="en-us+f3" data-kind="video">')
        self.assertContains(response, f'<option value="{self.avatar.pk}" data-voice="en-us+f3" data-kind="photo">')
        # Without a script nothing hides them: the fieldset is in the page, not hidden.
        self.assertContains(response, '<fieldset class="video-options" data-avatar-kind="video">')

    def test_it_ignores_the_video_only_options_for_a_photo_avatar(self):
        # Left over from a video avatar picked first, then hidden by the page: not the creator's concern.
        response = self.post_render(loop_mode="custom", segment_start="-1", disable_intervals="from 3 to 4")
        job = Render.objects.get()
        self.assertRedirects(response, f"/renders/{job.pk}/", fetch_redirect_response=False)
        self.assertEqual((job.loop_mode, job.segment_start, job.segment_end, job.disable_intervals),
                         ("reverse", None, None, []))

    def test_it_ignores_a_malformed_avatar_id(self):
        self.login(self.alice)
        self.assertEqual(self.client.get("/renders/new/?avatar=nope").status_code, 200)


class RenderOptionsTestCase(RenderTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice, name="Talker", kind="video")

    def test_it_keeps_the_loop_and_untouched_ranges(self):
        self.post_render(loop_mode="circle", segment_start="0", disable_intervals="0-0.5, 1-1.5")
        job = Render.objects.get()
        self.assertEqual(job.loop_mode, "circle")
        self.assertEqual(job.disable_intervals, [[0.0, 0.5], [1.0, 1.5]])
        self.assertContains(self.client.get(f"/renders/{job.pk}/"), "0.0–0.5 s, 1.0–1.5 s")

    def test_it_refuses_ranges_out_of_order(self):
        response = self.post_render(disable_intervals="3-4, 1-2")
        self.assertContains(response, "List the intervals without lip sync in chronological order", status_code=400)

    def test_it_refuses_more_than_five_ranges(self):
        response = self.post_render(disable_intervals="0-1, 2-3, 4-5, 6-7, 8-9, 10-11")
        self.assertContains(response, "You gave 6 intervals without lip sync; at most 5 are allowed.", status_code=400)

    def test_it_refuses_a_range_it_cannot_read(self):
        response = self.post_render(disable_intervals="from 3 to 4")
        self.assertContains(response, "is not a time range", status_code=400)

    def test_it_refuses_a_custom_segment_under_5_seconds(self):
        response = self.post_render(loop_mode="custom", segment_start="1", segment_end="4")
        self.assertContains(response, "The custom segment is 3.0 s long; choose a start and end at least 5 s apart.", status_code=400)
        self.assertFalse(Render.objects.exists())


class RenderJobTestCase(RenderTestCase):
    def test_the_poll_replaces_only_the_live_part_and_stops_at_the_end(self):
        self.post_render()
        job = Render.objects.get()
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, 'id="render-live" hx-get="/renders/')
        self.assertContains(page, 'hx-trigger="every 1s" hx-swap="innerHTML"')
        poll = self.client.get(f"/renders/{job.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(poll.status_code, 200)
        self.assertContains(poll, "Waiting for a free worker")
        self.assertContains(poll, '<progress class="progress" max="100" value="0" aria-labelledby="render-stage"')
        # The Cancel button sits outside the swapped part, so keyboard focus survives each poll.
        self.assertNotContains(poll, "Cancel")
        self.assertNotContains(poll, "<section")
        self.client.post(f"/renders/{job.pk}/cancel/")
        done = self.client.get(f"/renders/{job.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(done.status_code, 286)
        self.assertEqual((done["HX-Retarget"], done["HX-Reswap"]), ("#render-status", "outerHTML"))
        self.assertContains(done, '<section id="render-status"', status_code=286)
        self.assertNotContains(done, "hx-trigger", status_code=286)

    def test_it_brings_the_settings_the_job_learned_with_the_finished_status(self):
        self.post_render(burn_captions="on")
        job = Render.objects.get()
        Render.objects.filter(pk=job.pk).update(status=Render.Status.RUNNING, stage="frames", progress=40)
        page = self.client.get(f"/renders/{job.pk}/")
        self.assertContains(page, '<section id="render-settings" class="card">')
        self.assertNotContains(page, "from the script")
        poll = self.client.get(f"/renders/{job.pk}/", HTTP_HX_REQUEST="true")
        self.assertNotContains(poll, "render-settings")  # each running poll stays small
        # The worker finishes and records where the captions came from.
        Render.objects.filter(pk=job.pk).update(
            status=Render.Status.SUCCEEDED, progress=100, captions_source="script",
            video=store_fixture("clip.mp4", f"{job.key_prefix}video.mp4"),
            poster=store_fixture("poster.jpg", f"{job.key_prefix}poster.jpg"),
        )
        done = self.client.get(f"/renders/{job.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(done.status_code, 286)
        self.assertContains(done, '<section id="render-status"', status_code=286)
        self.assertContains(done, '<section id="render-settings" class="card" hx-swap-oob="true">', status_code=286)
        self.assertContains(done, "· from the script</dd>", status_code=286)
        self.assertNotContains(self.client.get(f"/renders/{job.pk}/"), "hx-swap-oob")

    def test_cancel_then_retry_queues_it_again(self):
        self.post_render()
        job = Render.objects.get()
        self.client.post(f"/renders/{job.pk}/cancel/")
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.CANCELLED)
        with self.captureOnCommitCallbacks() as queued:
            self.client.post(f"/renders/{job.pk}/retry/")
        job.refresh_from_db()
        self.assertEqual((job.status, job.attempts, len(queued)), (Render.Status.QUEUED, 0, 1))

    def test_a_cancelled_job_is_not_started_by_a_late_worker(self):
        from renders.tasks import render_run

        self.post_render()
        job = Render.objects.get()
        self.client.post(f"/renders/{job.pk}/cancel/")
        render_run(str(job.pk))
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.CANCELLED)
        self.assertFalse(job.video)

    def test_a_task_for_a_deleted_render_returns_quietly(self):
        from renders.tasks import render_run

        self.post_render()
        job = Render.objects.get()
        job_id = str(job.pk)
        job.delete()
        render_run(job_id)


class RenderAccessTestCase(RenderTestCase):
    def test_viewer_cannot_create(self):
        response = self.post_render(user=self.vera, team=self.team)
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Render.objects.exists())

    def test_outsider_gets_404(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/renders/{job.pk}/").status_code, 404)
        self.assertEqual(self.client.post(f"/renders/{job.pk}/cancel/").status_code, 404)
        self.assertEqual(self.client.get(f"/media/{job.video.name}").status_code, 404)

    def test_outsider_cannot_render_another_teams_avatar(self):
        response = self.post_render(user=self.charlie)
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Render.objects.exists())

    def test_member_plays_the_video_with_range_requests(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        self.login(self.bob, self.team)
        response = self.client.get(f"/media/{job.video.name}", HTTP_RANGE="bytes=0-99")
        self.assertEqual(response.status_code, 206)
        self.assertEqual(response["Content-Type"], "video/mp4")


class VoiceSampleTestCase(BaseTestCase):
    def test_it_plays_a_sample_of_a_voice(self):
        self.login(self.alice)
        response = self.client.get("/renders/voices/sample/", {"voice": "en-us"})
        self.assertEqual(response["Content-Type"], "audio/wav")
        with wave.open(io.BytesIO(response.content)) as wav:
            self.assertGreater(wav.getnframes() / wav.getframerate(), 1.0)

    def test_unknown_voice_is_404(self):
        self.login(self.alice)
        self.assertEqual(self.client.get("/renders/voices/sample/", {"voice": "xx-nope"}).status_code, 404)
