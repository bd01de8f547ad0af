from renders.models import Render
from tests import media_cache
from tests.api.base import ApiTestCase
from tests.factories import finished_render, ready_avatar

SCRIPT = "Hello there, and welcome to the launch."


class RenderCreateTestCase(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice, kind="video", gender="male")

    def render(self, **fields):
        return self.call("POST", "/renders", {"avatar_id": str(self.avatar.pk), **fields})

    def test_it_queues_a_script_with_a_voice_matching_the_avatar(self):
        response = self.render(script=SCRIPT, loop_mode="circle", segment_start=1.0, disable_intervals=[[0, 1.5], [3, 4]])
        self.assertEqual(response.status_code, 201, response.content)
        job = Render.objects.get()
        body = response.json()
        self.assertEqual((body["id"], body["status"], body["driver"], body["voice"]), (str(job.pk), "queued", "text", "en-us"))
        self.assertEqual((job.title, job.script, job.loop_mode, job.segment_start), (SCRIPT, SCRIPT, "circle", 1.0))
        self.assertEqual(job.disable_intervals, [[0.0, 1.5], [3.0, 4.0]])
        self.assertEqual(body["urls"], {"video": None, "poster": None, "captions_srt": None, "captions_vtt": None})
        self.assertEqual(len(self.queued), 1)

    def test_it_lip_syncs_an_uploaded_voice_track(self):
        file_id = self.uploaded(media_cache.audio(3.0, "wav"), kind="audio", content_type="audio/wav")
        response = self.render(audio_file_id=file_id, title="Voice over")
        self.assertEqual(response.status_code, 201, response.content)
        job = Render.objects.get()
        self.assertEqual((job.driver, job.title), ("audio", "Voice over"))
        self.assertEqual(job.audio.name, f"teams/{self.team.pk}/renders/{job.pk}/voice.wav")
        self.assertAlmostEqual(job.audio_duration, 3.0, delta=0.05)

    def test_it_refuses_what_the_form_refuses_in_the_same_words(self):
        self.assertError(self.render(script="Hi"), 422, "script_too_short", field="script", says="at least 4")
        self.assertError(self.render(script=SCRIPT, voice="klingon"), 422, "invalid_choice", field="voice")
        self.assertError(self.render(script=SCRIPT, speed=3), 422, "max_value", field="speed")
        self.assertError(self.render(script=SCRIPT, disable_intervals=[[4, 3]]), 422, None, field="disable_intervals")
        self.assertError(self.render(script=SCRIPT, loop_mode="bounce"), 422, "invalid_request", field="loop_mode")
        self.assertError(self.render(), 422, "missing_driver", field="script")
        file_id = self.uploaded(media_cache.audio(0.5, "wav"), kind="audio", content_type="audio/wav")
        self.assertError(self.render(audio_file_id=file_id), 422, "audio_too_short", field="audio_file_id",
                         says="a voice track needs 1 s to 10 min")
        self.assertFalse(Render.objects.exists())

    def test_a_voice_track_takes_its_transcript_language_and_caption_options(self):
        file_id = self.uploaded(media_cache.audio(3.0, "wav"), kind="audio", content_type="audio/wav")
        response = self.render(audio_file_id=file_id, transcript="  Hello   there. ", language="fr", burn_captions=True,
                               caption_position="top", caption_look="box")
        self.assertEqual(response.status_code, 201, response.content)
        job = Render.objects.get()
        self.assertEqual((job.transcript, job.voice, job.burn_captions, job.caption_position, job.caption_size,
                          job.caption_look), ("Hello there.", "fr", True, "top", "medium", "box"))
        self.assertError(self.render(script=SCRIPT, caption_size="huge"), 422, "invalid_request", field="caption_size")

    def test_it_takes_the_output_options_of_the_form(self):
        response = self.render(script=SCRIPT, resolution=480, upscale=True, aspect="1:1", fps=30, quality="match",
                               preview=True)
        self.assertEqual(response.status_code, 201, response.content)
        job = Render.objects.get()
        self.assertEqual((job.resolution, job.aspect, job.fps, job.quality, job.preview, job.upscale),
                         (480, "1:1", 30, "match", True, True))
        self.assertTrue(response.json()["preview"])
        # The avatar is 96 px high: 720p would be an upscale it did not ask for (the form's sentence).
        self.assertError(self.render(script=SCRIPT, resolution=720), 422, "invalid", field="resolution",
                         says="720p would be blown up and blurry")
        self.assertEqual(Render.objects.count(), 1)
        self.assertError(self.render(script=SCRIPT, fps=24), 422, "invalid_request", field="fps")

    def test_only_a_ready_avatar_renders(self):
        self.avatar.status = "preparing"
        self.avatar.save()
        self.assertError(self.render(script=SCRIPT), 409, "avatar_not_ready", field="avatar_id", says="preparing")

    def test_callback_urls_to_private_addresses_are_refused(self):
        response = self.render(script=SCRIPT, callback_url="http://127.0.0.1:8000/hook")
        self.assertEqual(response.status_code, 422, response.content)
        self.assertEqual(response.json()["error"]["field"], "callback_url")
        self.assertFalse(Render.objects.exists())


class IdempotencyTestCase(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice)

    def post(self, body, key="order-42", secret=None):
        return self.call("POST", "/renders", body, headers={"Idempotency-Key": key}, secret=secret)

    def test_two_identical_posts_with_one_key_make_one_render(self):
        body = {"avatar_id": str(self.avatar.pk), "script": SCRIPT}
        first, second = self.post(body), self.post(body)
        self.assertEqual((first.status_code, second.status_code), (201, 201))
        self.assertEqual(first.json(), second.json())
        self.assertEqual(second["Idempotent-Replayed"], "true")
        self.assertEqual(Render.objects.count(), 1)
        self.assertEqual(self.post(body, key="order-43").status_code, 201)
        self.assertEqual(Render.objects.count(), 2)

    def test_the_same_key_with_another_body_is_refused(self):
        self.post({"avatar_id": str(self.avatar.pk), "script": SCRIPT})
        other = self.post({"avatar_id": str(self.avatar.pk), "script": SCRIPT + " Again."})
        self.assertError(other, 422, "idempotency_key_reused", field="Idempotency-Key")
        self.assertEqual(Render.objects.count(), 1)

    def test_a_failed_request_is_not_remembered(self):
        self.assertEqual(self.post({"avatar_id": str(self.avatar.pk), "script": "Hi"}).status_code, 422)
        self.assertEqual(self.post({"avatar_id": str(self.avatar.pk), "script": "Hi"}).status_code, 422)

    def test_keys_are_per_api_key(self):
        theirs = ready_avatar(team=self.charlies_team, user=self.charlie)
        self.post({"avatar_id": str(self.avatar.pk), "script": SCRIPT})
        response = self.post({"avatar_id": str(theirs.pk), "script": SCRIPT}, secret=self.charlies_secret)
        self.assertEqual(response.status_code, 201)
        self.assertEqual(Render.objects.filter(team=self.charlies_team).count(), 1)


class RenderReadTestCase(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice)

    def test_a_finished_render_gives_its_result_urls_and_files(self):
        job = finished_render(avatar=self.avatar, user=self.alice, title="Launch: day 1", captions=True)
        body = self.call("GET", f"/renders/{job.pk}").json()
        self.assertEqual((body["status"], body["progress"], body["duration"], body["error"]), ("succeeded", 100, 1.0, None))
        base = f"http://testserver/api/v1/renders/{job.pk}/files"
        for name, url in body["urls"].items():
            self.assertTrue(url.startswith(f"{base}/{name.replace('captions_', 'captions.')}?token="), url)
        # The links work without a key, like S3's presigned URLs, and only for their own file.
        linked = self.client.get(body["urls"]["video"])
        self.assertEqual((linked.status_code, b"".join(linked.streaming_content)), (200, job.video.read()))
        poster_token = body["urls"]["poster"].split("?")[1]
        self.assertEqual(self.client.get(f"{base}/video?{poster_token}").status_code, 401)
        video = self.call("GET", f"/renders/{job.pk}/files/video")
        self.assertEqual(video.status_code, 200)
        self.assertEqual(video["Content-Disposition"], 'attachment; filename="Launch day 1.mp4"')
        ranged = self.call("GET", f"/renders/{job.pk}/files/video", headers={"Range": "bytes=0-9"})
        self.assertEqual((ranged.status_code, len(b"".join(ranged.streaming_content))), (206, 10))
        self.assertEqual(self.call("GET", f"/renders/{job.pk}/files/captions.vtt").status_code, 200)
        self.assertError(self.call("GET", f"/renders/{job.pk}/files/secrets"), 404, "not_found")

    def test_a_running_render_shows_stage_progress_and_eta_and_a_failed_one_its_sentence(self):
        running = finished_render(avatar=self.avatar, user=self.alice)
        Render.objects.filter(pk=running.pk).update(status="running", stage="lipsync", progress=40, eta_seconds=12)
        body = self.call("GET", f"/renders/{running.pk}").json()
        self.assertEqual((body["status"], body["stage"], body["progress"], body["eta_seconds"]), ("running", "lipsync", 40, 12))
        Render.objects.filter(pk=running.pk).update(status="failed", error="The worker stopped responding 3 times.")
        self.assertEqual(self.call("GET", f"/renders/{running.pk}").json()["error"], "The worker stopped responding 3 times.")

    def test_the_list_filters_by_status(self):
        done = finished_render(avatar=self.avatar, user=self.alice)
        failed = finished_render(avatar=self.avatar, user=self.alice, title="Broken")
        Render.objects.filter(pk=failed.pk).update(status="failed")
        self.assertEqual([r["id"] for r in self.call("GET", "/renders?status=succeeded").json()["items"]], [str(done.pk)])
        self.assertEqual(self.call("GET", "/renders").json()["total"], 2)
        self.assertEqual(self.call("GET", "/renders?limit=1").json()["total"], 2)
        self.assertEqual(len(self.call("GET", "/renders?limit=1").json()["items"]), 1)
        self.assertError(self.call("GET", "/renders?status=done"), 422, "invalid_request", field="status")
        self.assertError(self.call("GET", "/renders?limit=1000"), 422, "invalid_request", field="limit")

    def test_a_page_past_the_end_is_empty_however_far(self):
        finished_render(avatar=self.avatar, user=self.alice)
        self.assertEqual(self.call("GET", "/renders?offset=1").json(), {"items": [], "total": 1})
        # Beyond what the database's integers hold (schemathesis found SQLite's 500 there).
        far = self.call("GET", "/renders?offset=627449186556407907926591668224")
        self.assertEqual((far.status_code, far.json()), (200, {"items": [], "total": 1}))
        self.assertEqual(self.call("GET", f"/avatars?offset={10**30}").json()["items"], [])
        self.assertError(self.call("GET", "/renders?offset=-1"), 422, "invalid_request", field="offset")

    def test_cancel_stops_a_queued_render_and_refuses_a_finished_one(self):
        job = finished_render(avatar=self.avatar, user=self.alice)
        self.assertError(self.call("POST", f"/renders/{job.pk}/cancel"), 409, "already_finished",
                         says="This render has already finished.")
        Render.objects.filter(pk=job.pk).update(status="queued")
        response = self.call("POST", f"/renders/{job.pk}/cancel")
        self.assertEqual((response.status_code, response.json()["status"]), (200, "cancelled"))


class RenderEngineTestCase(ApiTestCase):
    """The API's `engine`: the built-in one, or a provider account of the key's team."""

    def setUp(self):
        super().setUp()
        from providers import services as provider_services

        self.avatar = ready_avatar(team=self.team, user=self.alice, kind="video", gender="male")
        self.account = provider_services.provider_account_create(
            team=self.team, user=self.alice, provider="newportai", label="NP",
            credentials={"api_key": "np-live-SECRET-0123456789"},
        )

    def test_a_voice_track_goes_to_the_chosen_provider(self):
        from providers.models import RemoteJob

        file_id = self.uploaded(media_cache.audio(3.0, "wav"), kind="audio", content_type="audio/wav")
        response = self.call("POST", "/renders", {"avatar_id": str(self.avatar.pk), "audio_file_id": file_id,
                                                  "engine": str(self.account.pk)})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["engine"], str(self.account.pk))
        self.assertEqual(RemoteJob.objects.get().render_id, Render.objects.get().pk)

    def test_what_the_provider_cannot_take_is_refused_with_its_rule(self):
        response = self.call("POST", "/renders", {"avatar_id": str(self.avatar.pk), "script": SCRIPT,
                                                  "burn_captions": True, "engine": str(self.account.pk)})
        self.assertEqual(response.status_code, 422, response.content)
        self.assertIn("built-in engine only", response.json()["error"]["message"])
        self.assertFalse(Render.objects.exists())

    def test_an_unknown_engine_is_refused(self):
        response = self.call("POST", "/renders", {"avatar_id": str(self.avatar.pk), "script": SCRIPT, "engine": "999"})
        self.assertEqual(response.status_code, 422, response.content)
        self.assertEqual(response.json()["error"]["field"], "engine")
