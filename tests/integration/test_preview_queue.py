"""A render preview goes before renders queued earlier, on a real broker and a real worker."""

import pytest
from celery.contrib.testing.worker import start_worker

from renders.models import Render, RenderEvent
from renders.services import PREVIEW_QUEUE, render_run_enqueue
from studio.celery import app as celery_app
from studio.models import Team
from studio.services import user_create
from tests.conftest import QUEUES
from tests.factories import ready_avatar
from tests.integration.helpers import wait_for

LONG_SCRIPT = ("This is the long render that was queued first. It speaks for a while, sentence after "
               "sentence, so that anyone waiting behind it would notice.")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_renders_previews_queued_after_long_renders_first(real_broker):
    alice = user_create(username="alice", password="x" * 12)
    team = Team.objects.get(memberships__user=alice)
    avatar = ready_avatar(team=team, user=alice)
    common = dict(team=team, avatar=avatar, created_by=alice, voice="en-us", script=LONG_SCRIPT)
    longs = [Render.objects.create(title=f"Long {i}", **common) for i in range(2)]
    previews = [Render.objects.create(title=f"Preview {i}", preview=True, **common) for i in range(2)]
    # All wait in the broker before the worker is up, the long renders queued first. Two
    # previews: a worker taking its queues in turn would run a long render between them.
    for job in longs + previews:
        render_run_enqueue(job.pk)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30):
        wait_for(lambda: not Render.objects.filter(status__in=[Render.Status.QUEUED, Render.Status.RUNNING])
                 .exists(), seconds=240, what="the renders")
    jobs = {job.pk: job for job in Render.objects.all()}
    assert {job.status for job in jobs.values()} == {Render.Status.SUCCEEDED}, [j.error for j in jobs.values()]
    order = [event.render_id for event in RenderEvent.objects.filter(kind="started").order_by("at", "id")]
    assert order == [job.pk for job in previews + longs]
    assert max(jobs[p.pk].finished_at for p in previews) < min(jobs[j.pk].finished_at for j in longs)
    assert all(jobs[p.pk].duration <= 3.05 < jobs[j.pk].duration for p in previews for j in longs)


@pytest.mark.django_db
def test_it_sends_previews_to_their_own_queue_and_renders_to_theirs(monkeypatch):
    alice = user_create(username="bob", password="x" * 12)
    team = Team.objects.get(memberships__user=alice)
    avatar = ready_avatar(team=team, user=alice)
    sent = []
    from renders.tasks import render_run

    monkeypatch.setattr(render_run, "apply_async", lambda args, **options: sent.append((args, options)))
    full = Render.objects.create(team=team, avatar=avatar, created_by=alice, title="Full", script="Hi.")
    quick = Render.objects.create(team=team, avatar=avatar, created_by=alice, title="Quick", script="Hi.",
                                  preview=True)
    render_run_enqueue(full.pk)
    render_run_enqueue(quick.pk)
    assert sent == [((str(full.pk),), {"queue": None}), ((str(quick.pk),), {"queue": PREVIEW_QUEUE})]
    assert celery_app.amqp.router.route({}, "renders.tasks.render_run")["queue"].name == "render"
