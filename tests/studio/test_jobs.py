import time
import uuid
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.test import TransactionTestCase, override_settings

from django.db import OperationalError
from django.utils import timezone

from avatars.models import Avatar
from avatars.tasks import avatar_sweep
from renders.models import Render
from renders import rendering
from renders.tasks import render_run, render_sweep
from studio.jobs import Heartbeat, ProgressReporter, job_claim, job_claimed_by, job_scratch, job_update
from studio.models import Team
from studio.services import user_create
from studio.celery import app as celery_app
from tests.base import BaseTestCase
from tests.factories import ready_avatar


class JobTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice)
        self.job = Render.objects.create(
            team=self.team, avatar=self.avatar, title="t", driver="text", script="Hello world", voice="en-us"
        )

    def sweep(self) -> tuple[dict, list]:
        with self.captureOnCommitCallbacks() as queued:
            counts = render_sweep()
        return counts, queued

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
        counts, queued = self.sweep()
        self.assertEqual((counts["requeued"], len(queued)), (1, 1))
        self.job.refresh_from_db()
        self.assertEqual((self.job.status, self.job.attempts), (Render.Status.QUEUED, 1))
        self.assertEqual((self.job.stage, self.job.progress), ("restarting", 0))
        self.assertEqual(self.job.events.get().kind, "swept")
        self.login(self.alice)
        partial = self.client.get(f"/renders/{self.job.pk}/", HTTP_HX_REQUEST="true")
        self.assertContains(partial, "Restarting after a worker stopped")

    def test_sweep_fails_a_job_out_of_attempts(self):
        Render.objects.filter(pk=self.job.pk).update(
            status="running", attempts=3, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        counts, _ = self.sweep()
        self.assertEqual(counts["failed"], 1)
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.FAILED)
        self.assertIn("stopped responding 3 times", self.job.error)

    def test_sweep_leaves_a_fresh_job_alone(self):
        Render.objects.filter(pk=self.job.pk).update(status="running", heartbeat_at=timezone.now())
        counts = self.sweep()[0]
        self.assertEqual((counts["requeued"], counts["failed"]), (0, 0))

    def test_sweep_resends_a_job_whose_message_was_lost(self):
        Render.objects.filter(pk=self.job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
        with mock.patch("renders.tasks.render_run_enqueue") as enqueue:
            counts = render_sweep()
        self.assertEqual(counts["requeued"], 1)
        enqueue.assert_called_once_with(self.job.pk)

    def test_avatars_have_their_own_sweep(self):
        stale = ready_avatar(team=self.team, user=self.alice, name="Stale")
        Avatar.objects.filter(pk=stale.pk).update(
            status=Avatar.Status.PREPARING, attempts=1, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        with self.captureOnCommitCallbacks() as queued:
            counts = avatar_sweep()
        self.assertEqual((counts["requeued"], len(queued)), (1, 1))
        stale.refresh_from_db()
        self.assertEqual(stale.status, Avatar.Status.UPLOADED)

    def test_a_transient_storage_error_is_retried_not_failed(self):
        with mock.patch("renders.rendering.download", side_effect=OperationalError("database is locked")):
            with self.assertRaises(OperationalError):  # raised for Celery's autoretry
                rendering.render_run(str(self.job.pk), last_try=False)
        self.job.refresh_from_db()
        # Handed back to the queue for the retry, without counting against the attempt limit.
        self.assertEqual((self.job.status, self.job.attempts, self.job.error), (Render.Status.QUEUED, 0, ""))
        self.assertEqual(list(self.job.events.values_list("kind", flat=True)), ["started", "retrying"])

    def test_an_error_that_outlasts_every_retry_fails_the_job_with_a_sentence(self):
        # Eager tasks run their retries inline, one after another, without the backoff's wait.
        celery_app.conf.task_eager_propagates = False
        self.addCleanup(setattr, celery_app.conf, "task_eager_propagates", True)
        with mock.patch("renders.rendering.download", side_effect=OperationalError("disk I/O error")) as download:
            render_run.apply(args=[str(self.job.pk)])
        self.assertEqual(download.call_count, render_run.max_retries + 1)
        self.job.refresh_from_db()
        self.assertEqual(self.job.status, Render.Status.FAILED)
        self.assertIn("storage or database kept failing", self.job.error)
        self.assertEqual(self.job.events.filter(kind="retrying").count(), render_run.max_retries)
        self.assertEqual(self.job.events.last().kind, "failed")


class ScratchTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        avatar = ready_avatar(team=self.team, user=self.alice)
        self.job = Render.objects.create(
            team=self.team, avatar=avatar, title="t", status="running", attempts=2, heartbeat_at=timezone.now()
        )
        self.root = Path(settings.JOB_SCRATCH_DIR)

    def folder(self, name: str) -> Path:
        path = self.root / name
        (path / "work").mkdir(parents=True)
        (path / "work" / "frame.png").write_bytes(b"x")
        return path

    def test_the_sweep_removes_scratch_that_no_running_attempt_owns(self):
        current = self.folder(f"render-{self.job.pk}-2")
        earlier_attempt = self.folder(f"render-{self.job.pk}-1")
        deleted_job = self.folder(f"render-{uuid.uuid4()}-1")
        other_kind = self.folder(f"avatar-{uuid.uuid4()}-1")
        not_ours = self.folder("something-else")
        with self.captureOnCommitCallbacks():
            counts = render_sweep()
        self.assertEqual(counts["scratch_removed"], 2)
        self.assertEqual(
            [p.exists() for p in (current, earlier_attempt, deleted_job, other_kind, not_ours)],
            [True, False, False, True, True],
        )
        Render.objects.filter(pk=self.job.pk).update(status="failed")
        with self.captureOnCommitCallbacks():
            render_sweep()
        self.assertFalse(current.exists())

    def test_an_attempt_removes_its_scratch_even_when_it_fails(self):
        with self.assertRaises(RuntimeError):
            with job_scratch(Render, pk=self.job.pk, attempt=2, running_statuses=["running"]) as scratch:
                (scratch / "partial.mp4").write_bytes(b"x")
                raise RuntimeError("engine blew up")
        self.assertEqual(list(self.root.iterdir()), [])


class HeartbeatTestCase(TransactionTestCase):
    def test_it_beats_while_the_job_runs_and_stops_after(self):
        alice = user_create(username="alice", password="x" * 12)
        avatar = ready_avatar(team=Team.objects.get(), user=alice)
        job = Render.objects.create(team=avatar.team, avatar=avatar, title="t", status="running")
        with override_settings(JOB_HEARTBEAT_SECONDS=0.05):
            with Heartbeat(Render, job.pk, running_statuses=["running"]):
                time.sleep(0.4)
                beats = set()
                for _ in range(5):
                    beats.add(Render.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk))
                    time.sleep(0.1)
            last = Render.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk)
            time.sleep(0.2)
        self.assertGreaterEqual(len(beats - {None}), 3)
        self.assertEqual(Render.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk), last)


class ClaimTestCase(BaseTestCase):
    def test_a_worker_that_lost_its_job_cannot_touch_the_attempt_that_replaced_it(self):
        # Cancel and "start again" while the first worker still runs: both claims have attempt 1.
        avatar = ready_avatar(team=self.team, user=self.alice)
        job = Render.objects.create(team=self.team, avatar=avatar, title="t", script="Hello world", voice="en-us")
        self.assertTrue(job_claim(Render, pk=job.pk, from_statuses=["queued"], to_status="running"))
        first = ProgressReporter(Render, job.pk, running_status="running", weights={"frames": 1},
                                 claim=job_claimed_by(Render.objects.get(pk=job.pk)))
        Render.objects.filter(pk=job.pk).update(status="queued", attempts=0)  # cancel, then retry
        time.sleep(0.002)  # a later claim has a later start
        self.assertTrue(job_claim(Render, pk=job.pk, from_statuses=["queued"], to_status="running"))
        second = Render.objects.get(pk=job.pk)

        first.last_write = 0
        self.assertTrue(first.should_cancel())
        first("frames", 0.9)
        self.assertFalse(job_update(Render, pk=job.pk, from_statuses=["running"], only_if=first.claim,
                                    status="succeeded"))
        self.assertTrue(job_update(Render, pk=job.pk, from_statuses=["running"],
                                   only_if=job_claimed_by(second), status="succeeded"))
        job.refresh_from_db()
        self.assertEqual((job.status, job.progress), ("succeeded", 0))
