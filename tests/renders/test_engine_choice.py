"""The render form's engine: the built-in one by default, or a provider account of the team."""

from providers import services as provider_services
from providers.models import RemoteJob
from renders.models import Render
from tests.renders.test_renders import RenderTestCase


class EngineChoiceTestCase(RenderTestCase):
    def setUp(self):
        super().setUp()
        self.account = provider_services.provider_account_create(
            team=self.team, user=self.alice, provider="newportai", label="Our NP",
            credentials={"api_key": "np-live-SECRET-0123456789"},
        )

    def test_the_form_offers_the_teams_accounts_and_their_options(self):
        self.login(self.alice)
        page = self.client.get("/renders/new/")
        self.assertContains(page, "Built-in engine")
        self.assertContains(page, f'<option value="{self.account.pk}">')
        self.assertContains(page, 'data-provider="newportai"')
        self.assertNotContains(page, "np-live-SECRET")

    def test_a_team_without_accounts_sees_no_engine_choice(self):
        self.account.delete()
        self.login(self.alice)
        self.assertNotContains(self.client.get("/renders/new/"), "data-engine-options")

    def test_the_built_in_engine_makes_no_remote_job(self):
        self.post_render(engine="local")
        self.assertEqual(Render.objects.count(), 1)
        self.assertFalse(RemoteJob.objects.exists())

    def test_a_provider_refusal_is_shown_on_the_form_and_nothing_is_created(self):
        # NewportAI lip-syncs uploaded audio only: a typed script with its own voice is refused
        # up front, or the built-in voice speaks it; burned-in captions are ours alone.
        response = self.post_render(engine=str(self.account.pk), burn_captions="on")
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "built-in engine only", status_code=400)
        self.assertFalse(Render.objects.exists())

    def test_another_teams_account_cannot_be_chosen(self):
        other = provider_services.provider_account_create(
            team=self.charlie.teams.get(), user=self.charlie, provider="newportai", label="Theirs",
            credentials={"api_key": "np-theirs-0123456789"},
        )
        response = self.post_render(engine=str(other.pk))
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Render.objects.exists())

    def test_a_voice_track_on_a_provider_is_marked_for_it_before_it_is_queued(self):
        from tests import media_cache
        from tests.factories import ready_avatar

        self.avatar = ready_avatar(team=self.team, user=self.alice, kind="video", name="Presenter on video")
        with open(media_cache.audio(3.0, "wav"), "rb") as handle:
            response = self.post_render(driver="audio", script="", audio=handle, engine=str(self.account.pk))
        job = Render.objects.get()
        self.assertRedirects(response, f"/renders/{job.pk}/")
        self.assertEqual(RemoteJob.objects.get().render_id, job.pk)
        self.assertEqual(len(self.queued), 1)
        self.assertContains(self.client.get(f"/renders/{job.pk}/"), "NewportAI · Our NP")


class EngineAdminTestCase(RenderTestCase):
    def setUp(self):
        super().setUp()
        self.account = provider_services.provider_account_create(
            team=self.team, user=self.alice, provider="newportai", label="Our NP",
            credentials={"api_key": "np-live-SECRET-0123456789"},
        )

    def test_admin_shows_the_provider_task_and_reruns_a_failed_render_on_the_built_in_engine(self):
        from renders.services import render_create, ProviderChoice
        from tests.factories import ready_avatar
        from tests import media_cache

        avatar = ready_avatar(team=self.team, user=self.alice, kind="video", name="Presenter on video")
        with open(media_cache.audio(3.0, "wav"), "rb") as handle:
            from django.core.files.uploadedfile import SimpleUploadedFile

            upload = SimpleUploadedFile("voice.wav", handle.read(), content_type="audio/wav")
        with self.captureOnCommitCallbacks():
            job = render_create(team=self.team, user=self.alice, avatar=avatar, title="On NP",
                                driver=Render.Driver.AUDIO, audio=upload,
                                provider=ProviderChoice(account=self.account))
        RemoteJob.objects.filter(render=job).update(task_id="np-task-42", raw_status="FAILED")
        Render.objects.filter(pk=job.pk).update(status=Render.Status.FAILED, error="NewportAI said no.")
        self.alice.is_staff = self.alice.is_superuser = True
        self.alice.save()
        self.client.force_login(self.alice)
        page = self.client.get(f"/admin/renders/render/{job.pk}/change/")
        self.assertContains(page, "np-task-42")
        self.assertNotContains(page, "np-live-SECRET")
        choose = self.client.post("/admin/renders/render/", {"action": "rerun_on_another_engine",
                                                              "_selected_action": [str(job.pk)]})
        self.assertContains(choose, "Built-in engine")
        self.assertContains(choose, f'<option value="{self.account.pk}">')
        with self.captureOnCommitCallbacks() as queued:
            self.client.post("/admin/renders/render/", {"action": "rerun_on_another_engine", "engine": "local",
                                                         "_selected_action": [str(job.pk)]})
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.QUEUED)
        self.assertFalse(RemoteJob.objects.filter(render=job).exists())
        self.assertEqual(len(queued), 1)
        # and back to the provider, from a failed render again
        Render.objects.filter(pk=job.pk).update(status=Render.Status.FAILED)
        with self.captureOnCommitCallbacks():
            self.client.post("/admin/renders/render/", {"action": "rerun_on_another_engine",
                                                         "engine": str(self.account.pk),
                                                         "_selected_action": [str(job.pk)]})
        self.assertEqual(RemoteJob.objects.get(render=job).account, self.account)
