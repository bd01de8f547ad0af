"""A live job is never swept: the longest quiet stage (recognising a long voice track) still beats."""

import threading
import time
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TransactionTestCase, override_settings

from avatars import preparation
from avatars import services as avatar_services
from avatars.models import Avatar
from renders import rendering
from renders import services as render_services
from renders.models import Render
from renders.tasks import render_sweep
from studio.models import Team
from studio.services import user_create
from tests import media_cache

pytestmark = pytest.mark.slow


class LongStageTestCase(TransactionTestCase):
    @override_settings(JOB_STALE_AFTER_SECONDS=2, JOB_HEARTBEAT_SECONDS=0.5)
    def test_recognising_a_long_voice_track_is_not_mistaken_for_a_dead_worker(self):
        alice = user_create(username="alice", password="x" * 12)
        team = Team.objects.get()
        video = media_cache.talking_video(12.0)
        # Jobs are run here by hand, not through Celery: the test decides when each one runs.
        with mock.patch("avatars.services.avatar_prepare_enqueue"):
            avatar = avatar_services.avatar_create(
                team=team, user=alice, name="Talker", gender="female",
                source=SimpleUploadedFile("talk.mp4", video.read_bytes()),
            )
        preparation.avatar_prepare(str(avatar.pk))
        avatar.refresh_from_db()
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)

        voice = media_cache.audio(60.0, "wav")
        with mock.patch("renders.services.render_run_enqueue"):
            job = render_services.render_create(
                team=team, user=alice, avatar=avatar, title="Long", driver="audio",
                audio=SimpleUploadedFile("voice.wav", voice.read_bytes()),
            )
        worker = threading.Thread(target=rendering.render_run, args=[str(job.pk)])
        worker.start()
        requeued, stages = 0, set()
        while worker.is_alive():
            requeued += render_sweep()["requeued"]
            stages.add(Render.objects.values_list("stage", flat=True).get(pk=job.pk))
            time.sleep(0.25)
        worker.join()
        job.refresh_from_db()
        self.assertEqual(job.status, Render.Status.SUCCEEDED, job.error)
        self.assertIn("speech", stages)
        self.assertEqual((requeued, job.attempts), (0, 1))
