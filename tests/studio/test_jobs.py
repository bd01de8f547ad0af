from datetime import timedelta

from django.utils import timezone

from avatars.models import Avatar
from renders.models import Render
from studio.jobs import ProgressReporter, job_claim
from studio.tasks import sweep_stale_jobs
from tests.base import BaseTestCase
from tests.renders.helpers import ready_photo_avatar


class JobTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        with self.captureOnCommitCallbacks(execute=True):
            ready_photo_avatar(team=self.team, user=self.alice)
        self.avatar = Avatar.objects.get()
        self.job = Render.objects.create(
            team=self.team, avatar=self.avatar, title="t", driver="text", script="Hello world", voice="en-us"
        )

    def test_only_one_worker_claims_a_job(self):
        self.assertTrue(job_claim(Render, pk=self.job.pk, from_statuses=["queued"], to_status="running"))
        self.assertFalse(job_claim(Render, pk=self.job.pk, from_statuses=["queued"], to_status="running"))
        self.job.refresh_from_db()
        self.assertEqual(self.job.attempts, 1)

    def test_progress_moves_forward_across_stages_and_sees_cancel(self):
        job_claim(Render, pk=self.job.pk, from_statuses=["queued"], to_status="running")
        reporter = ProgressReporter(Render, self.job.pk, running_status="running", weights={"a": 1, "b": 3})
        reporter("a", 1.0)
        reporter("b", 0.5)
        self.job.refresh_from_db()
        self.assertEqual((self.job.stage, self.job.progress), ("b", 61))
        reporter("a", 0.0)  # a late report from an earlier stage must not move the bar back
        self.job.refresh_from_db()
        self.assertEqual(self.job.progress, 61)
        Render.objects.filter(pk=self.job.pk).update(status="cancelled")
        reporter.last_write = 0
        self.assertTrue(reporter.should_cancel())

    def test_sweep_requeues_a_stale_job(self):
        Render.objects.filter(pk=self.job.pk).update(
            status="running", attempts=1, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        with self.captureOnCommitCallbacks(execute=True):
            counts = sweep_stale_jobs()
        self.assertEqual(counts["requeued"], 1)
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.SUCCEEDED, self.job.error)
        self.assertEqual(self.job.attempts, 2)

    def test_sweep_fails_a_job_out_of_attempts(self):
        Render.objects.filter(pk=self.job.pk).update(
            status="running", attempts=3, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        counts = sweep_stale_jobs()
        self.assertEqual(counts["failed"], 1)
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.FAILED)
        self.assertIn("stopped responding 3 times", self.job.error)

    def test_sweep_leaves_a_fresh_job_alone(self):
        Render.objects.filter(pk=self.job.pk).update(status="running", heartbeat_at=timezone.now())
        self.assertEqual(sweep_stale_jobs(), {"requeued": 0, "failed": 0})

    def test_sweep_resends_a_job_whose_message_was_lost(self):
        Render.objects.filter(pk=self.job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
        with self.captureOnCommitCallbacks(execute=True):
            counts = sweep_stale_jobs()
        self.assertEqual(counts["requeued"], 1)
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.SUCCEEDED, self.job.error)
