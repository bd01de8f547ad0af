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


class FakeClock:
    """Stands in for the `time` module in studio.jobs, so a test walks a job through time."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class EtaTestCase(BaseTestCase):
    """A render whose speech takes 1 s of its 10 % and whose frames take 100 s of their 85 %."""

    def setUp(self):
        super().setUp()
        avatar = ready_avatar(team=self.team, user=self.alice)
        self.job = Render.objects.create(team=self.team, avatar=avatar, title="t", script="Hello world", voice="en-us")
        job_claim(Render, pk=self.job.pk, from_statuses=["queued"], to_status="running")
        self.clock = FakeClock()
        self.enterContext(mock.patch("studio.jobs.time", self.clock))
        self.reporter = ProgressReporter(Render, self.job.pk, running_status="running", weights=rendering.STAGE_WEIGHTS)

    def report(self, stage: str, fraction: float, at: float) -> int | None:
        self.clock.now = 1000.0 + at
        self.reporter(stage, fraction)
        self.job.refresh_from_db()
        return self.job.eta_seconds

    def frames(self, start: float, seconds_per_fraction: float, until: float, at: float) -> list[tuple[float, float, int | None]]:
        """Report the frames stage every second from `start` at a steady pace: (when, fraction, shown)."""
        shown = []
        fraction = start
        while fraction < until - 1e-9:
            at += 1.0
            fraction = min(fraction + 1.0 / seconds_per_fraction, 1.0)
            shown.append((at, fraction, self.report("frames", fraction, at)))
        return shown

    def test_it_shows_nothing_until_the_frames_stage_has_shown_its_pace(self):
        self.assertIsNone(self.report("preparing", 0.0, at=0))
        self.assertIsNone(self.report("speech", 0.5, at=0.5))
        self.assertIsNone(self.report("speech", 1.0, at=1.0))  # a whole-job rate said 9 s here
        self.assertIsNone(self.report("frames", 0.0, at=1.0))
        early = self.frames(0.0, seconds_per_fraction=100, until=0.02, at=1.0)
        self.assertEqual([eta for _, _, eta in early], [None, None])  # 2 s in, 2 %: too little to go on

    def test_it_estimates_from_the_frames_pace_and_counts_down_steadily(self):
        self.report("speech", 1.0, at=1.0)
        self.report("frames", 0.0, at=1.0)
        shown = [(at, eta) for at, _, eta in self.frames(0.0, seconds_per_fraction=100, until=1.0, at=1.0) if eta]
        self.assertEqual(shown[0][0], 4.0)  # the first estimate after 3 s of frames
        for at, eta in shown:
            truth = 101 + 100 * 0.05 / 0.85 - at  # the frames left, then the finalize at their pace
            self.assertAlmostEqual(eta, truth, delta=1.5)
        etas = [eta for _, eta in shown]
        self.assertTrue(all(later <= earlier for earlier, later in zip(etas, etas[1:])), etas)

    def test_it_follows_a_slowdown_without_leaping(self):
        self.report("speech", 1.0, at=1.0)
        self.report("frames", 0.0, at=1.0)
        fast = self.frames(0.0, seconds_per_fraction=50, until=0.3, at=1.0)
        (at, fraction, _) = fast[-1]
        slow = self.frames(fraction, seconds_per_fraction=200, until=0.6, at=at)
        etas = [eta for _, _, eta in fast + slow if eta is not None]
        for earlier, later in zip(etas, etas[1:]):
            self.assertLessEqual(later, earlier * 1.2 + 1, etas)  # no poll sees it leap up
        self.assertGreater(etas[-1], fast[-1][2])  # yet it owns up to the slower pace


def test_it_warms_up_the_engine_in_each_worker_process():
    from celery.signals import worker_process_init

    from studio.celery import _warm_up_the_engine

    assert any(receiver() is _warm_up_the_engine for _, receiver in worker_process_init.receivers)


def test_a_worker_process_starts_even_if_the_engine_cannot_warm_up(monkeypatch, caplog):
    import engine.pipeline

    from studio.celery import _warm_up_the_engine

    def broken() -> None:
        raise OSError("libGL.so.1: cannot open shared object file")

    monkeypatch.setattr(engine.pipeline, "warm_up", broken)
    _warm_up_the_engine()
    assert "could not warm up" in caplog.text
