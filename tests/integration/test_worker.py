"""The whole job path over a real broker: web enqueues on commit, a real Celery worker renders."""

import pytest
from django.test import Client

from avatars.models import Avatar
from engine import speech
from renders.models import Render
from studio.models import Team
from studio.services import user_create
from tests.integration.helpers import mp4_facts, ready_photo_avatar, wait_for

SCRIPT = "Good morning. This video was rendered by a real worker, frame by frame."



@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_renders_through_a_real_worker(embedded_worker):
    alice = user_create(username="alice", password="x" * 12)
    team = Team.objects.get(memberships__user=alice)
    avatar = ready_photo_avatar(team=team, user=alice)
    wait_for(
        lambda: Avatar.objects.filter(pk=avatar.pk, status__in=Avatar.TERMINAL).exists(),
        seconds=120,
        what="avatar preparation",
    )
    avatar.refresh_from_db()
    assert avatar.status == Avatar.Status.READY, avatar.error or avatar.problems

    client = Client()
    client.force_login(alice)
    response = client.post(
        "/renders/new/",
        {"avatar": avatar.pk, "title": "Worker", "driver": "text", "script": SCRIPT, "voice": "en-us",
         "speed": "1.0", "volume": "0", "loop_mode": "reverse"},
    )
    job = Render.objects.get()
    assert response.status_code == 302

    seen_progress = set()
    statuses = []

    def finished():
        partial = client.get(f"/renders/{job.pk}/", HTTP_HX_REQUEST="true")
        statuses.append(partial.status_code)
        seen_progress.add(Render.objects.values_list("progress", flat=True).get(pk=job.pk))
        return partial.status_code == 286

    wait_for(finished, seconds=180, what="the render to finish")
    job.refresh_from_db()
    assert job.status == Render.Status.SUCCEEDED, job.error
    assert set(statuses[:-1]) <= {200} and statuses[-1] == 286
    assert job.attempts == 1 and job.heartbeat_at is not None

    facts = mp4_facts(job.video)
    expected = speech.synthesize(SCRIPT, voice="en-us").duration
    assert abs(facts["video_seconds"] - expected) <= 1 / facts["fps"] + 1e-6
    assert facts["audio_rms"] > 0.01
