"""Provider accounts, and rendering on a provider: start, poll, copy the result, finish.

A provider render is a ``Render`` with a ``RemoteJob``. The render worker claims it as usual
and calls ``provider_render_start`` instead of the built-in engine; from then on
``provider_poll`` (a task on the ``remote`` queue) moves the job one step at a time:

    pending ──(check, nothing sent)──▶ training (A2E: the avatar, once per account) ──▶
    submitting ──(task id saved)──▶ polling ──▶ succeeded (result copied into our storage)
                                               └─▶ failed (the provider's sentence)

Every step re-reads the rows, writes the render only under the claim the job was started
with, and beats the render's heartbeat, so the render sweep treats a job waiting on a provider
as alive and a resumed worker polls the saved task instead of sending a second one. HTTP never
runs inside a database transaction (SQLite's write lock would be held for the whole call); each
row change is its own short transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from avatars.models import Avatar
from engine import media as engine_media
from engine import speech
from engine.errors import InputRejected
from engine.remote import (
    PROVIDERS,
    AvatarRequest,
    Media,
    ProviderEngine,
    ProviderError,
    ProviderTask,
    RenderRequest,
    Status,
    TransientProviderError,
    engine_for,
    signed_callback_url,
)
from engine.remote.base import Credentials
from engine.remote.errors import CallbackRejected
from providers import crypto
from providers.media import callback_secret, media_url
from providers.models import ProviderAccount, ProviderAvatar, RemoteJob
from renders.models import Render, RenderEvent
from studio import netguard
from studio.jobs import TRANSIENT_ERRORS, Heartbeat, job_fail, job_update
from studio.models import Team
from studio.storage import delete_quietly, removed_on_failure, upload, upload_each
from webhooks.services import webhook_render_finished

log = logging.getLogger(__name__)

RUNNING = [Render.Status.RUNNING]
# A training that started but whose task id never reached the database (a worker killed
# mid-request) is given up after this long, rather than trained a second time unasked.
STARTING_LOST_AFTER = timedelta(minutes=10)
GENERIC_FAILURE = "Something went wrong while rendering on {provider}; retry, and if it fails again contact your admin."
LOST_TRACK = (
    "The studio lost track of the request it was sending to {provider} (the worker stopped mid-request), so it "
    "did not send it again; check the {provider} account for the video before you retry."
)
CAPTIONS_MAX_BYTES = 2 * 1024 * 1024
# A timer that fires a little early is on time, not a heartbeat-only wake-up.
EARLY_WAKE_TOLERANCE = timedelta(milliseconds=500)


# --- accounts ---------------------------------------------------------------------------------

def provider_account_create(
    *, team: Team, user: AbstractUser, provider: str, label: str, credentials: dict[str, str]
) -> ProviderAccount:
    engine = PROVIDERS.get(provider)
    if engine is None:
        raise InputRejected(f"Choose one of {', '.join(e.label for e in PROVIDERS.values())}.", field="provider",
                            code="provider")
    label = label.strip()
    if not label:
        raise InputRejected("Give the account a name the team will recognise.", field="label", code="label")
    Credentials(engine.label, credentials, engine.credential_fields)  # refuses a missing field, by name
    with transaction.atomic():
        if ProviderAccount.objects.filter(team=team, label=label).exists():
            raise InputRejected("The team already has an account with that name.", field="label", code="label_taken")
        account = ProviderAccount(team=team, provider=provider, label=label, created_by=user)
        account.set_credentials(credentials)
        account.save()
    log.info("provider account %s (%s) added to team %s", account.pk, provider, team.pk)
    return account


@transaction.atomic
def provider_account_delete(*, account: ProviderAccount) -> None:
    """Renders still polling on the account fail at their next poll with a sentence saying so."""
    account.delete()


def provider_accounts_rotate() -> int:
    """Re-encrypt every account's credentials under the newest key; how many were rewritten."""
    count = 0
    for account in ProviderAccount.objects.only("pk", "credentials_encrypted").iterator():
        rotated = crypto.rotate(account.credentials_encrypted)
        if rotated != account.credentials_encrypted:
            ProviderAccount.objects.filter(pk=account.pk).update(credentials_encrypted=rotated)
            count += 1
    return count


def provider_engine_choices(*, team: Team) -> list[tuple[str, str]]:
    """The render form's engine choices: the built-in engine, then the team's accounts by id."""
    accounts = ProviderAccount.objects.filter(team=team)
    return [("local", "Built-in engine")] + [(str(a.pk), a.choice_label) for a in accounts]


def provider_account_for(*, team: Team, choice: str) -> ProviderAccount | None:
    """The account an engine choice names (None for the built-in engine); another team's is refused."""
    if choice in ("", "local"):
        return None
    account = ProviderAccount.objects.filter(team=team, pk=int(choice) if choice.isdigit() else -1).first()
    if account is None:
        raise InputRejected("Choose the built-in engine or one of this team's provider accounts.", field="engine",
                            code="engine")
    return account


# --- creating a provider render ---------------------------------------------------------------

def provider_render_check(
    *, render: Render, account: ProviderAccount, voice: str = "", options: dict | None = None,
    captions: bool = False,
) -> None:
    """Refuse, before anything is created or sent, what the provider cannot take.

    `render` may be unsaved (the form's values); its voice track, if any, need not be stored
    yet: the rules are checked against the measured values (format, seconds), which the form
    already has.
    """
    if account.team_id != render.team_id:
        raise InputRejected("That provider account is not in this team.", field="engine", code="engine")
    job = RemoteJob(render=render, account=account, provider=account.provider, voice=voice, captions=captions,
                    options=dict(options or {}))
    engine_class = PROVIDERS[account.provider]
    with tempfile.TemporaryDirectory(prefix="provider-check-") as workdir:
        built = _build(job, render, engine_class, Path(workdir), placeholders=True)
        # Checks send nothing, so the account's real credentials are not needed (nor decrypted).
        with engine_class({name: "check-only" for name in engine_class.credential_fields}) as engine:
            engine.check_render(built.request)
            if built.avatar_request is not None:
                engine.check_avatar(built.avatar_request)


def remote_job_create(
    *, render: Render, account: ProviderAccount, voice: str = "", options: dict | None = None,
    captions: bool = False,
) -> RemoteJob:
    """Mark `render` as rendered by `account`. Call it in the transaction that creates the render,
    before the render is enqueued (render_create enqueues on commit)."""
    if account.team_id != render.team_id:
        raise InputRejected("That provider account is not in this team.", field="engine", code="engine")
    with transaction.atomic():
        job = RemoteJob.objects.create(render=render, account=account, provider=account.provider, voice=voice,
                                       captions=captions, options=dict(options or {}))
        RenderEvent.objects.create(render=render, kind="engine", message=f"{account.provider_label} ({account.label})")
    return job


def render_engine_change(
    *, render: Render, account: ProviderAccount | None, voice: str = "", options: dict | None = None,
    captions: bool = False,
) -> None:
    """Move a failed or cancelled render to another engine (None: the built-in one) before
    `render_retry` queues it again: "re-run on another engine"."""
    if render.status not in (Render.Status.FAILED, Render.Status.CANCELLED):
        raise InputRejected("Only a failed or cancelled render can move to another engine.", field="engine",
                            code="engine_busy")
    if account is not None:
        provider_render_check(render=render, account=account, voice=voice, options=options, captions=captions)
    with transaction.atomic():
        RemoteJob.objects.filter(render=render).delete()
        if account is not None:
            remote_job_create(render=render, account=account, voice=voice, options=options, captions=captions)
        else:
            RenderEvent.objects.create(render=render, kind="engine", message="Built-in engine")


def render_uses_provider(render_id) -> bool:
    return RemoteJob.objects.filter(render_id=render_id).exists()


# --- the worker's side ------------------------------------------------------------------------

def provider_render_start(*, render_id) -> None:
    """Run by the render worker right after it claimed the render, instead of the built-in engine.

    A job already holding a task id (a worker died, the sweep re-queued the render) resumes
    polling that task; a failed job retried by the creator starts afresh.
    """
    job = RemoteJob.objects.select_related("render").get(render_id=render_id)
    render = job.render
    if render.status != Render.Status.RUNNING:
        return
    now = timezone.now()
    with transaction.atomic():
        if job.state in (RemoteJob.State.FAILED, RemoteJob.State.ABANDONED, RemoteJob.State.SUCCEEDED):
            job.state = RemoteJob.State.PENDING
            job.task_id, job.task_data, job.provider_avatar = "", {}, None
            job.polls = job.transient_errors = 0
            job.raw_status, job.last_status, job.last_error, job.deadline = "", {}, "", None
        job.claim_started_at = render.started_at
        if job.deadline is None:
            job.deadline = now + timedelta(minutes=settings.PROVIDER_RENDER_DEADLINE_MINUTES)
        job.next_poll_at = None
        job.save()
        if job.task_id:
            RenderEvent.objects.create(render=render, kind="resumed",
                                       message=f"polling {job.provider_label} task {job.task_id}")
    provider_poll(job_id=job.pk, token=None)


def provider_poll(*, job_id, token: str | None) -> None:
    """One step of a provider job, then the next step scheduled. `token` is the schedule's:
    a message from an older schedule (replaced by a callback or a resume) does nothing."""
    job = RemoteJob.objects.select_related("render", "account").filter(pk=job_id).first()
    if job is None or job.state not in RemoteJob.ACTIVE:
        return
    if token is not None and token != job.poll_token:
        return
    render = job.render
    claim = Q(started_at=job.claim_started_at)
    now = timezone.now()
    if not job_update(Render, pk=render.pk, from_statuses=RUNNING, only_if=claim, heartbeat_at=now):
        _abandon(job)
        return
    if job.next_poll_at and now + EARLY_WAKE_TOLERANCE < job.next_poll_at:
        # Woken only to keep the heartbeat fresh while waiting longer than the sweep allows.
        _schedule(job, (job.next_poll_at - now).total_seconds(), keep_due=True)
        return
    if job.deadline and now > job.deadline:
        _fail(job, render, claim, _deadline_sentence(job))
        return
    account = job.account
    if account is None or account.team_id != render.team_id:
        _fail(job, render, claim, f"The {job.provider_label} account this render used was removed; render it "
                                  "again with another engine.")
        return
    try:
        with Heartbeat(Render, render.pk, running_statuses=RUNNING, claim=claim), \
                engine_for(account.provider, account.credentials(), **_engine_options(account)) as engine:
            delay = _step(job, render, engine, claim)
    except TransientProviderError as error:
        _retry_later(job, render, claim, str(error), error.retry_after)
        return
    except netguard.UrlRefused as error:
        if error.transient:
            _retry_later(job, render, claim, str(error), None)
        else:
            _fail(job, render, claim, f"The studio could not copy {job.provider_label}'s result: {error}")
        return
    except (ProviderError, InputRejected, crypto.CredentialsUnreadable) as error:
        _fail(job, render, claim, str(error))
        return
    except TRANSIENT_ERRORS:
        raise  # the database or storage hiccuped: the task's own retry polls again
    except Exception as error:
        log.exception("provider job %s (render %s) failed", job.pk, render.pk)
        _fail(job, render, claim, GENERIC_FAILURE.format(provider=job.provider_label), detail=repr(error))
        raise
    if delay is not None:
        _schedule(job, delay)


@dataclass
class _Built:
    request: RenderRequest
    avatar_request: AvatarRequest | None  # set when the avatar must be made at the provider first


def _step(job: RemoteJob, render: Render, engine: ProviderEngine, claim: Q) -> float | None:
    avatar = render.avatar
    with tempfile.TemporaryDirectory(prefix="provider-", dir=_scratch_root()) as workdir:
        if job.state == RemoteJob.State.SUBMITTING:
            _fail(job, render, claim, LOST_TRACK.format(provider=job.provider_label))
            return None
        if job.state == RemoteJob.State.PENDING:
            built = _build(job, render, type(engine), Path(workdir))
            engine.check_render(built.request)  # a refusal fails the render before anything is sent
            if built.avatar_request is not None:
                engine.check_avatar(built.avatar_request)
                pa = _provider_avatar_start(job, avatar, engine, built.avatar_request)
                _progress(render, claim, f"training the avatar at {engine.label}", 0)
                RemoteJob.objects.filter(pk=job.pk).update(
                    state=RemoteJob.State.TRAINING, provider_avatar=pa,
                    deadline=timezone.now() + timedelta(hours=settings.PROVIDER_AVATAR_DEADLINE_HOURS))
                job.state, job.provider_avatar = RemoteJob.State.TRAINING, pa
                return _poll_cap()
            return _submit(job, render, engine, built, claim)
        if job.state == RemoteJob.State.TRAINING:
            pa = _provider_avatar_poll(job.provider_avatar_id, engine)
            if pa is None or pa.status == ProviderAvatar.Status.FAILED:
                _fail(job, render, claim, pa.error if pa else f"The avatar at {engine.label} was removed; render again.")
                return None
            if pa.status != ProviderAvatar.Status.READY:
                return _poll_cap()
            return _submit(job, render, engine, _build(job, render, type(engine), Path(workdir)), claim)
        return _poll_render(job, render, engine, claim, Path(workdir))


def _submit(job: RemoteJob, render: Render, engine: ProviderEngine, built: _Built, claim: Q) -> float | None:
    request = built.request
    if request.callback_url is None and engine.capabilities.callbacks:
        request = dataclasses.replace(request, callback_url=_callback_url(job))
    engine.check_render(request)
    # Only the worker that moves the job to "submitting" sends it, so two messages for one job
    # (a duplicate delivery, a callback racing the schedule) never pay twice.
    if not RemoteJob.objects.filter(pk=job.pk, state=job.state).update(state=RemoteJob.State.SUBMITTING):
        return None
    try:
        task = engine.start_render(request)
    except TransientProviderError as error:
        if error.code == "timeout":
            # Sent, but no answer: the provider may have made the video, so it is not sent again.
            _fail(job, render, claim, LOST_TRACK.format(provider=engine.label), detail=str(error))
            return None
        RemoteJob.objects.filter(pk=job.pk).update(state=job.state)  # nothing was made: try again later
        raise
    except BaseException:
        RemoteJob.objects.filter(pk=job.pk, state=RemoteJob.State.SUBMITTING).update(state=RemoteJob.State.FAILED)
        raise
    now = timezone.now()
    RemoteJob.objects.filter(pk=job.pk).update(
        state=RemoteJob.State.POLLING, task_id=task.task_id, task_data=dict(task.data), polls=0, transient_errors=0,
        deadline=now + timedelta(minutes=settings.PROVIDER_RENDER_DEADLINE_MINUTES), last_error="",
    )
    job.state, job.task_id = RemoteJob.State.POLLING, task.task_id
    RenderEvent.objects.create(render=render, kind="submitted", message=f"{engine.label} task {task.task_id}")
    _progress(render, claim, f"queued at {engine.label}", 0)
    return _backoff(0)


def _poll_render(job: RemoteJob, render: Render, engine: ProviderEngine, claim: Q, workdir: Path) -> float | None:
    status = engine.render_status(ProviderTask(job.provider, "render", job.task_id, job.task_data))
    polls = job.polls + 1
    RemoteJob.objects.filter(pk=job.pk).update(polls=polls, transient_errors=0, raw_status=status.raw_status[:60],
                                               last_status=_status_json(status))
    job.polls = polls
    if status.state == "failed":
        _fail(job, render, claim, status.error or f"{engine.label} could not make the video.")
        return None
    if status.state == "succeeded":
        _complete(job, render, engine, status, claim, workdir)
        return None
    where = "queued at" if status.state == "queued" else "rendering at"
    _progress(render, claim, f"{where} {engine.label}", status.progress)
    return _backoff(polls)


# --- the request ------------------------------------------------------------------------------

def _build(job: RemoteJob, render: Render, engine: type[ProviderEngine], workdir: Path, *,
           placeholders: bool = False) -> _Built:
    """The provider request for `render`, with our files handed over by URL (or as local files
    for a provider that uploads). With `placeholders` nothing is downloaded or synthesised: the
    files are stand-ins carrying the measured values, for checking only."""
    caps = engine.capabilities
    if render.burn_captions:
        raise InputRejected(f"Captions burned into the picture are made by the built-in engine only; turn them off "
                            f"to render on {engine.label}.", field="burn_captions", code="provider_burn_captions")
    avatar = render.avatar
    kind = avatar.kind or Avatar.Kind.VIDEO
    trained = ProviderAvatar.objects.filter(avatar=avatar, account_id=job.account_id,
                                            status=ProviderAvatar.Status.READY).first() if avatar.pk else None
    per_render = caps.render_video if kind == Avatar.Kind.VIDEO else caps.render_image
    can_train = (caps.avatar_video if kind == Avatar.Kind.VIDEO else caps.avatar_image) is not None
    fields: dict = {}
    avatar_request = None
    if trained is not None and caps.render_avatar_id:
        fields["avatar_id"] = trained.provider_avatar_id
    elif per_render is None and caps.render_avatar_id and can_train:
        fields["avatar_id"] = "(trained first)"
        avatar_request = AvatarRequest(
            name=avatar.name, source=_avatar_media(avatar, caps.uploads_files, workdir, placeholders), kind=kind,
            gender=avatar.gender or "female", background_color=avatar.background_rgb,
        )
    else:
        fields["avatar_source"] = _avatar_media(avatar, caps.uploads_files, workdir, placeholders)
        fields["avatar_kind"] = kind
    if render.driver == Render.Driver.TEXT and job.voice and caps.drive_by_text:
        fields.update(text=render.script, voice=job.voice, speed=render.speed, volume=render.volume)
    elif render.driver == Render.Driver.TEXT:
        # The provider reads no script with our voices: the built-in voice speaks it and the
        # provider lip-syncs to that audio.
        fields["audio"] = _spoken_script(job, render, caps.uploads_files, workdir, placeholders)
    else:
        fields["audio"] = _stored_media(render.audio.name or f"{render.key_prefix}voice.wav", caps.uploads_files,
                                        workdir, placeholders, duration=render.audio_duration)
    options = {k: v for k, v in job.options.items() if v is not None}
    request = RenderRequest(
        loop_mode=render.loop_mode, segment_start=render.segment_start, segment_end=render.segment_end,
        disable_intervals=[tuple(pair) for pair in render.disable_intervals or []], captions=job.captions,
        title=render.title, options=options, **fields,
    )
    return _Built(request=request, avatar_request=avatar_request)


def _avatar_media(avatar: Avatar, uploads: bool, workdir: Path, placeholders: bool) -> Media:
    field = avatar.media or avatar.source
    return _stored_media(field.name, uploads, workdir, placeholders, duration=avatar.duration, width=avatar.width,
                         height=avatar.height, fps=avatar.fps)


def _stored_media(key: str, uploads: bool, workdir: Path, placeholders: bool, **measured) -> Media:
    fmt = Path(key).suffix.lstrip(".").lower()
    size = None
    if not placeholders and default_storage.exists(key):
        size = default_storage.size(key)
    if uploads:
        path = workdir / Path(key).name
        if placeholders or not default_storage.exists(key):
            path.touch()  # a stand-in: checks look at the name and the measured values only
        else:
            with default_storage.open(key, "rb") as src, open(path, "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
        return Media(path=path, format=fmt, size_bytes=size, **measured)
    return Media(url=media_url(key), format=fmt, size_bytes=size, **measured)


def _spoken_script(job: RemoteJob, render: Render, uploads: bool, workdir: Path, placeholders: bool) -> Media:
    key = f"{render.key_prefix}provider-speech.wav"
    if placeholders:
        return _stored_media(key, uploads, workdir, True)
    if not job.speech:
        spoken = speech.synthesize(render.script, voice=render.voice or speech.DEFAULT_VOICE, speed=render.speed,
                                   volume=render.volume)
        wav = workdir / "provider-speech.wav"
        speech.write_wav(wav, spoken.samples, spoken.sample_rate)
        with removed_on_failure() as written:
            written.append(upload(wav, key))
            RemoteJob.objects.filter(pk=job.pk).update(speech=written[-1])
        job.speech.name = written[-1]
        job.last_status = {**job.last_status, "speech_seconds": round(spoken.duration, 3)}
        RemoteJob.objects.filter(pk=job.pk).update(last_status=job.last_status)
    return _stored_media(job.speech.name, uploads, workdir, False, duration=job.last_status.get("speech_seconds"))


def _engine_options(account: ProviderAccount) -> dict:
    options = {}
    if account.provider in settings.PROVIDER_BASE_URLS:
        options["base_url"] = settings.PROVIDER_BASE_URLS[account.provider]
    if account.provider == "a2e":
        options["probe_urls"] = settings.PROVIDER_PROBE_URLS
    return options


def _callback_url(job: RemoteJob) -> str:
    base = settings.PUBLIC_BASE_URL + reverse("provider_callback", kwargs={"provider": job.provider})
    return signed_callback_url(base, provider=job.provider, reference=str(job.pk), secret=callback_secret())


# --- avatars made at a provider ---------------------------------------------------------------

def _provider_avatar_start(job: RemoteJob, avatar: Avatar, engine: ProviderEngine,
                           request: AvatarRequest) -> ProviderAvatar:
    """The account's avatar for `avatar`: an existing one, or a training started now. Only the
    worker that creates (or restarts) the row sends the training request."""
    account_id = job.account_id
    pa, created = ProviderAvatar.objects.get_or_create(avatar=avatar, account_id=account_id)
    if not created:
        stale = timezone.now() - STARTING_LOST_AFTER
        if pa.status == ProviderAvatar.Status.STARTING and pa.updated_at < stale:
            ProviderAvatar.objects.filter(pk=pa.pk, status=pa.status).update(
                status=ProviderAvatar.Status.FAILED, error=LOST_TRACK.format(provider=engine.label),
                updated_at=timezone.now())
            pa.refresh_from_db()
        if pa.status != ProviderAvatar.Status.FAILED:
            return pa  # training, ready, or being started by another worker
        # A failed training is tried again only for a new render the creator asked for.
        if not ProviderAvatar.objects.filter(pk=pa.pk, status=ProviderAvatar.Status.FAILED).update(
                status=ProviderAvatar.Status.STARTING, error="", task_id="", updated_at=timezone.now()):
            pa.refresh_from_db()
            return pa
    try:
        task = engine.start_avatar(request)
    except TransientProviderError as error:
        if error.code == "timeout":
            ProviderAvatar.objects.filter(pk=pa.pk).update(status=ProviderAvatar.Status.FAILED,
                                                           error=LOST_TRACK.format(provider=engine.label))
        else:
            pa.delete()  # nothing was started: the next poll starts it
        raise
    except BaseException as error:
        ProviderAvatar.objects.filter(pk=pa.pk).update(status=ProviderAvatar.Status.FAILED, error=str(error))
        raise
    ProviderAvatar.objects.filter(pk=pa.pk).update(status=ProviderAvatar.Status.TRAINING, task_id=task.task_id,
                                                   task_data=dict(task.data), updated_at=timezone.now())
    RenderEvent.objects.create(render=job.render, kind="avatar_training", message=f"{engine.label} task {task.task_id}")
    pa.refresh_from_db()
    return pa


def _provider_avatar_poll(pk, engine: ProviderEngine) -> ProviderAvatar | None:
    pa = ProviderAvatar.objects.filter(pk=pk).first()
    if pa is None or pa.status != ProviderAvatar.Status.TRAINING:
        return pa
    status = engine.avatar_status(ProviderTask(engine.name, "avatar", pa.task_id, pa.task_data))
    fields = {"raw_status": status.raw_status[:60], "note": status.note[:200], "updated_at": timezone.now()}
    if status.state == "succeeded" and status.avatar_id:
        fields.update(status=ProviderAvatar.Status.READY, provider_avatar_id=status.avatar_id)
    elif status.state == "succeeded" and provider_customises(engine.name):
        # No render waits on a customisation, so a missing id is a note, not a reason to keep asking.
        fields.update(status=ProviderAvatar.Status.READY,
                      note=f"{engine.label} finished without naming the avatar's key; it is in the {engine.label} "
                           "console.")
    elif status.state == "failed":
        fields.update(status=ProviderAvatar.Status.FAILED, error=status.error or f"{engine.label} could not train the avatar.")
    ProviderAvatar.objects.filter(pk=pa.pk, status=ProviderAvatar.Status.TRAINING).update(**fields)
    pa.refresh_from_db()
    return pa


# --- avatars a team owner customises at a provider (Tencent) ----------------------------------

# Tencent's customisation waits on people (demo confirmation, manual review) for days.
CUSTOMISATION_CHECK_SECONDS = 600
CUSTOMISATION_CHECK_DAYS = 14


def provider_customises(provider: str) -> bool:
    """A provider whose avatar step is a product of its own that an owner starts (Tencent's
    customisation): it makes avatars, yet renders from footage, so no render ever starts one."""
    caps = PROVIDERS[provider].capabilities
    return (caps.avatar_video or caps.avatar_image) is not None and not caps.render_avatar_id


def provider_customisation_accounts(*, team: Team) -> list[ProviderAccount]:
    return [a for a in ProviderAccount.objects.filter(team=team) if provider_customises(a.provider)]


def provider_avatar_customise(
    *, avatar: Avatar, account: ProviderAccount, user: AbstractUser, name: str, gender: str, material_url: str,
    options: dict | None = None,
) -> ProviderAvatar:
    """Send `avatar`'s customisation to `account`'s provider, checked first against its rules.

    The material and authorisation letters are URLs on the provider's own storage (Tencent COS
    paths …/video/, …/photo/, …/idcard/, …/audio/): its document gives no way to put files there
    but its console, so the owner uploads them there and pastes the addresses.
    """
    label = account.provider_label
    if account.team_id != avatar.team_id:
        raise InputRejected("That provider account is not in this team.", field="account", code="engine")
    if not provider_customises(account.provider):
        raise InputRejected(f"{label} has no separate customisation: it makes the avatar from the studio's own "
                            "files when a render needs one.", field="account", code="provider_no_customisation")
    if avatar.status != Avatar.Status.READY:
        raise InputRejected("Choose an avatar that is ready.", field="avatar", code="avatar_not_ready")
    material_url = material_url.strip()
    request = AvatarRequest(
        name=name, gender=gender, kind=avatar.kind or Avatar.Kind.VIDEO,
        source=Media(url=material_url, format=Path(urlsplit(material_url).path).suffix.lstrip(".").lower()),
        options={k: v for k, v in (options or {}).items() if v not in (None, "")},
    )
    with engine_for(account.provider, account.credentials(), **_engine_options(account)) as engine:
        engine.check_avatar(request)
        pa, created = ProviderAvatar.objects.get_or_create(avatar=avatar, account=account,
                                                           defaults={"created_by": user})
        if not created and pa.status == ProviderAvatar.Status.STARTING \
                and pa.updated_at < timezone.now() - STARTING_LOST_AFTER:
            # The request that sent it died before Tencent's answer was saved: the owner looks first.
            ProviderAvatar.objects.filter(pk=pa.pk, status=pa.status).update(
                status=ProviderAvatar.Status.FAILED, error=LOST_TRACK.format(provider=label), updated_at=timezone.now())
            raise InputRejected(LOST_TRACK.format(provider=label), field="avatar", code="provider_lost_track")
        restarted = not created and ProviderAvatar.objects.filter(pk=pa.pk, status=ProviderAvatar.Status.FAILED).update(
            status=ProviderAvatar.Status.STARTING, task_id="", task_data={}, provider_avatar_id="", raw_status="",
            note="", error="", created_by=user, created_at=timezone.now(), updated_at=timezone.now())
        if not (created or restarted):
            raise InputRejected(f"This avatar is already {pa.get_status_display().lower()} at {label} on that "
                                "account.", field="avatar", code="provider_avatar_exists")
        try:
            task = engine.start_avatar(request)
        except BaseException as error:
            lost = isinstance(error, TransientProviderError) and error.code == "timeout"
            message = LOST_TRACK.format(provider=label) if lost else str(error)
            ProviderAvatar.objects.filter(pk=pa.pk).update(status=ProviderAvatar.Status.FAILED, error=message,
                                                           updated_at=timezone.now())
            raise
    ProviderAvatar.objects.filter(pk=pa.pk).update(
        status=ProviderAvatar.Status.TRAINING, task_id=task.task_id,
        task_data={**task.data, "anchor_name": request.name.strip()}, updated_at=timezone.now())
    log.info("provider avatar %s: %s task %s started for avatar %s", pa.pk, account.provider, task.task_id, avatar.pk)
    transaction.on_commit(lambda: enqueue_avatar_check(pa.pk, CUSTOMISATION_CHECK_SECONDS))
    pa.refresh_from_db()
    return pa


def provider_avatar_check(*, provider_avatar_id, scheduled: bool = False) -> ProviderAvatar | None:
    """Ask the provider how a customisation is going. A scheduled check books the next one until
    it ends or CUSTOMISATION_CHECK_DAYS have passed (after that, the team page's "Check now")."""
    pa = ProviderAvatar.objects.select_related("account").filter(pk=provider_avatar_id).first()
    if pa is None or pa.status != ProviderAvatar.Status.TRAINING:
        return pa
    label = pa.account.provider_label
    try:
        with engine_for(pa.account.provider, pa.account.credentials(), **_engine_options(pa.account)) as engine:
            pa = _provider_avatar_poll(pa.pk, engine)
    except (ProviderError, crypto.CredentialsUnreadable) as error:
        # Our check failed, not the customisation: say so and keep checking.
        reason = str(error) if isinstance(error, ProviderError) else "the stored key cannot be read"
        ProviderAvatar.objects.filter(pk=pa.pk).update(note=f"The last check at {label} failed: {reason}"[:200],
                                                       updated_at=timezone.now())
        pa.refresh_from_db()
    if scheduled and pa is not None and pa.status == ProviderAvatar.Status.TRAINING \
            and timezone.now() - pa.created_at < timedelta(days=CUSTOMISATION_CHECK_DAYS):
        enqueue_avatar_check(pa.pk, CUSTOMISATION_CHECK_SECONDS)
    return pa


def enqueue_avatar_check(provider_avatar_id, countdown: float) -> None:
    from providers.tasks import provider_avatar_check as task

    task.apply_async((provider_avatar_id,), countdown=countdown, queue="remote")


# --- finishing --------------------------------------------------------------------------------

def _complete(job: RemoteJob, render: Render, engine: ProviderEngine, status: Status, claim: Q, workdir: Path) -> None:
    """Copy the result into our storage at once (provider URLs expire), then finish the render
    the way a local one finishes: video, poster, captions, measurements, event, webhook."""
    _progress(render, claim, "copying the result", 0.99)
    fetched = netguard.fetch_to_file(
        status.video_url, workdir, max_bytes=settings.PROVIDER_RESULT_MAX_BYTES,
        timeout=settings.PROVIDER_DOWNLOAD_TIMEOUT_SECONDS, allowed_kinds=["video"], field="video")
    info = engine_media.probe(fetched.path)
    if not info.has_video or info.duration <= 0:
        raise InputRejected(f"{engine.label}'s result is not a playable video.", field="video", code="provider_result")
    poster = _poster(status, fetched.path, info.duration, workdir)
    srt, vtt, warning = _captions(status, workdir)
    extension = engine_media.EXTENSION_FOR_TYPE[fetched.content_type]
    outputs = {
        "video": (fetched.path, f"video.{extension}"),
        "poster": (poster, "poster.jpg"),
        "captions_srt": (srt, "captions.srt"),
        "captions_vtt": (vtt, "captions.vtt"),
    }
    with removed_on_failure() as written:
        stored = upload_each(outputs, prefix=render.key_prefix, written=written)
        old = [f.name for f in (render.video, render.poster, render.captions_srt, render.captions_vtt) if f]
        finished = job_update(
            Render, pk=render.pk, from_statuses=RUNNING, only_if=claim, status=Render.Status.SUCCEEDED, stage="",
            progress=100, eta_seconds=None, **{"captions_srt": "", "captions_vtt": "", **stored},
            captions_source=(Render.CaptionsSource.SCRIPT if render.driver == Render.Driver.TEXT
                             else Render.CaptionsSource.MACHINE) if srt else "",
            warning=warning, duration=info.duration, width=info.width, height=info.height,
            size_bytes=fetched.size, finished_at=timezone.now(),
        )
    if not finished:  # cancelled while copying
        delete_quietly(written)
        _abandon(job)
        return
    delete_quietly([name for name in old if name not in stored.values()])
    RemoteJob.objects.filter(pk=job.pk).update(state=RemoteJob.State.SUCCEEDED)
    RenderEvent.objects.create(render=render, kind="succeeded", message=f"{info.duration:.2f} s on {engine.label}")
    if warning:
        RenderEvent.objects.create(render=render, kind="warning", message=warning)
    if status.avatar_id and engine.capabilities.render_avatar_id:
        # TopView saved the footage as a private avatar: later renders use it instead of uploading.
        ProviderAvatar.objects.update_or_create(
            avatar=render.avatar, account_id=job.account_id,
            defaults={"status": ProviderAvatar.Status.READY, "provider_avatar_id": status.avatar_id,
                      "task_id": job.task_id})
    webhook_render_finished(render_id=render.pk)


def _poster(status: Status, video: Path, duration: float, workdir: Path) -> Path:
    target = workdir / "poster.jpg"
    if status.poster_url:
        try:
            image = netguard.fetch_to_file(status.poster_url, workdir / "poster-source", max_bytes=20 << 20,
                                           timeout=60, allowed_kinds=["image/jpeg", "image/png", "image/webp"],
                                           field="poster")
            return engine_media.write_poster(image.path, target)
        except (InputRejected, OSError):
            log.info("provider poster not usable; taking a frame of the video instead")
    return engine_media.write_poster(video, target, at=min(0.5, duration / 2))


def _captions(status: Status, workdir: Path) -> tuple[Path | None, Path | None, str]:
    """The provider's SRT captions and their WebVTT twin; a failure costs the captions, not the render."""
    if not status.captions_url:
        return None, None, ""
    try:
        checked = netguard.check_url(status.captions_url, field="captions")
        text = _fetch_small_text(str(checked.url))
    except (InputRejected, httpx.HTTPError, UnicodeDecodeError, ValueError):
        log.info("provider captions could not be copied")
        return None, None, "The provider's captions could not be copied; the video has none."
    srt = workdir / "captions.srt"
    vtt = workdir / "captions.vtt"
    srt.write_text(text, encoding="utf-8")
    vtt.write_text(srt_to_webvtt(text), encoding="utf-8")
    return srt, vtt, ""


def _fetch_small_text(url: str) -> str:
    with httpx.Client(timeout=30, follow_redirects=False) as client, client.stream("GET", url) as response:
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        data = b""
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > CAPTIONS_MAX_BYTES:
                raise ValueError("captions too large")
    text = data.decode("utf-8-sig")
    if "-->" not in text:
        raise ValueError("not SRT")
    return text.replace("\r\n", "\n")


def srt_to_webvtt(srt: str) -> str:
    """SRT and WebVTT differ in the header and the decimal mark of the cue timings."""
    lines = []
    for line in srt.splitlines():
        if "-->" in line:
            line = line.replace(",", ".")
        lines.append(line)
    return "WEBVTT\n\n" + "\n".join(lines).strip() + "\n"


# --- bookkeeping ------------------------------------------------------------------------------

def _progress(render: Render, claim: Q, stage: str, fraction: float | None) -> None:
    fields = {"stage": stage[:40]}
    if fraction is not None:
        fields["progress"] = int(99 * max(0.0, min(1.0, fraction)))
    job_update(Render, pk=render.pk, from_statuses=RUNNING, only_if=claim, **fields)


def _retry_later(job: RemoteJob, render: Render, claim: Q, message: str, retry_after: float | None) -> None:
    errors = job.transient_errors + 1
    RemoteJob.objects.filter(pk=job.pk).update(transient_errors=errors, last_error=message)
    job.transient_errors = errors
    RenderEvent.objects.create(render=render, kind="provider_retry", message=message)
    _schedule(job, max(_backoff(errors), retry_after or 0.0))


def _fail(job: RemoteJob, render: Render, claim: Q, message: str, *, detail: str = "") -> None:
    RemoteJob.objects.filter(pk=job.pk).update(state=RemoteJob.State.FAILED, last_error=detail or message)
    if job_fail(Render, pk=render.pk, from_statuses=RUNNING, only_if=claim, message=message, eta_seconds=None):
        RenderEvent.objects.create(render=render, kind="failed", message=detail or message)
        webhook_render_finished(render_id=render.pk)


def _abandon(job: RemoteJob) -> None:
    """The render was cancelled or deleted, or a newer claim took it over: this polling stops.
    A newer claim updates the job itself, so only a render that left "running" abandons the job."""
    render = Render.objects.filter(pk=job.render_id).only("status").first()
    if render is None or render.status != Render.Status.RUNNING:
        RemoteJob.objects.filter(pk=job.pk, claim_started_at=job.claim_started_at,
                                 state__in=RemoteJob.ACTIVE).exclude(state=RemoteJob.State.SUBMITTING).update(
            state=RemoteJob.State.ABANDONED)


def _deadline_sentence(job: RemoteJob) -> str:
    waited = "train the avatar" if job.state == RemoteJob.State.TRAINING else "finish the video"
    reason = f" The last problem was: {job.last_error}" if job.last_error else ""
    return (f"{job.provider_label} did not {waited} in the time the studio waits, so it stopped waiting."
            f"{reason} Retry later, or render with another engine.")


def _poll_cap() -> float:
    # Polls are the job's heartbeat: they must come well within the sweep's staleness limit.
    return float(min(settings.PROVIDER_POLL_MAX_SECONDS, settings.JOB_STALE_AFTER_SECONDS / 3))


def _backoff(n: int) -> float:
    """The wait before the n-th poll or retry: doubling from the first wait up to the cap."""
    return min(_poll_cap(), settings.PROVIDER_POLL_FIRST_SECONDS * 2 ** max(0, min(n, 10) - 1))


def _scratch_root() -> Path:
    root = Path(settings.JOB_SCRATCH_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _status_json(status: Status) -> dict:
    return {k: v for k, v in dataclasses.asdict(status).items() if v not in (None, "")}


def _schedule(job: RemoteJob, seconds: float, *, keep_due: bool = False) -> None:
    """Poll again in `seconds`. A new token retires any older schedule of this job; a wait longer
    than the poll cap is split into heartbeat-only wake-ups."""
    token = uuid.uuid4().hex
    fields = {"poll_token": token}
    if not keep_due:
        fields["next_poll_at"] = timezone.now() + timedelta(seconds=seconds)
    RemoteJob.objects.filter(pk=job.pk).update(**fields)
    countdown = min(seconds, _poll_cap())
    transaction.on_commit(lambda: enqueue_poll(str(job.pk), token, countdown))


def enqueue_poll(job_id: str, token: str, countdown: float) -> None:
    from providers.tasks import provider_poll as task

    task.apply_async((job_id, token), countdown=countdown)


def provider_callback(*, provider: str, url: str, headers, body: bytes) -> bool:
    """A provider's callback, verified, only hastens the next poll; False when it is not ours."""
    engine_class = PROVIDERS.get(provider)
    if engine_class is None or not engine_class.capabilities.callbacks:
        return False
    reference = dict(parse_qsl(urlsplit(url).query)).get("ref", "")
    try:
        job = RemoteJob.objects.select_related("account").filter(pk=uuid.UUID(reference), provider=provider).first()
    except ValueError:
        return False
    if job is None or job.account is None:
        return False
    try:
        with engine_for(job.account.provider, job.account.credentials()) as engine:
            event = engine.verify_callback(url=url, headers=headers, body=body, secret=callback_secret())
    except (CallbackRejected, crypto.CredentialsUnreadable, InputRejected):
        return False
    if job.state == RemoteJob.State.POLLING and job.task_id == event.task_id:
        with transaction.atomic():
            _schedule(job, 0)
    return True
