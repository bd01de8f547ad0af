import tempfile
import uuid
from functools import lru_cache
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING, reswap, retarget

from avatars.models import Avatar
from engine import speech
from renders import services
from api.uploads import FormRefused, direct_uploads, report_direct_problems
from renders.forms import DEFAULT_VOICES, RenderForm
from renders.models import Render
from studio.access import require_editor, team_object_or_404

FINISHED_PARTIAL = "renders/render_detail.html#finished"
LIVE_PARTIAL = "renders/render_detail.html#live"
LIST_PAGE_SIZE = 60


@login_required
def render_list(request: HttpRequest) -> HttpResponse:
    renders = Render.objects.filter(team=request.team).select_related("avatar")[:LIST_PAGE_SIZE]
    return render(request, "renders/render_list.html", {"renders": renders})


@login_required
def render_create(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    initial = {"voice": DEFAULT_VOICES[Avatar.Gender.FEMALE]}
    chosen = Avatar.objects.filter(team=request.team, pk=_uuid_or_none(request.GET.get("avatar"))).first()
    if chosen is not None:
        initial.update(avatar=chosen.pk, voice=DEFAULT_VOICES[chosen.gender])
    if request.method != "POST":
        return _render_form_page(request, RenderForm(team=request.team, initial=initial), status=200)
    try:
        with direct_uploads(request, {"audio": ("audio",)}) as (files, problems):
            # the upload handler says whether a file was too large once the post is parsed
            oversize = getattr(request, "oversize_upload", None)
            form = RenderForm(request.POST, files, team=request.team, initial=initial, oversize_field=oversize)
            if form.is_valid() and not problems:
                new = services.render_create(
                    team=request.team, user=request.user, preview="preview" in request.POST, **form.render_arguments()
                )
                return redirect("renders:detail", render_id=new.pk)
            report_direct_problems(form, problems)
            raise FormRefused
    except FormRefused:
        pass
    return _render_form_page(request, form, status=400)


def _render_form_page(request: HttpRequest, form: RenderForm, *, status: int) -> HttpResponse:
    has_avatars = form.fields["avatar"].queryset.exists()
    return render(
        request, "renders/render_create.html", {"form": form, "has_avatars": has_avatars}, status=status
    )


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


@login_required
def render_detail(request: HttpRequest, render_id) -> HttpResponse:
    job = team_object_or_404(request, Render.objects.select_related("avatar"), render_id)
    context = {"render": job}
    if request.htmx:
        return _status_update(request, job, context)
    context["events"] = job.events.all()
    return render(request, "renders/render_detail.html", context)


def _status_update(request: HttpRequest, job: Render, context: dict) -> HttpResponse:
    """While the job runs, only the live part; once it ends, the whole card, and no more polls.

    The ending also brings the Settings card (out of band), which shows what the job found
    out as it ran, such as where its captions came from.
    """
    if not job.is_terminal:
        return render(request, LIVE_PARTIAL, context)
    response = render(request, FINISHED_PARTIAL, context, status=HTMX_STOP_POLLING)
    return reswap(retarget(response, "#render-status"), "outerHTML")


@login_required
@require_POST
def render_cancel(request: HttpRequest, render_id) -> HttpResponse:
    require_editor(request)
    job = team_object_or_404(request, Render, render_id)
    if not services.render_cancel(render=job):
        messages.error(request, "This render has already finished.")
    return redirect("renders:detail", render_id=job.pk)


@login_required
@require_POST
def render_retry(request: HttpRequest, render_id) -> HttpResponse:
    require_editor(request)
    job = team_object_or_404(request, Render, render_id)
    if not services.render_retry(render=job):
        messages.error(request, "Only a failed or cancelled render can be retried.")
    return redirect("renders:detail", render_id=job.pk)


@login_required
@require_POST
def render_delete(request: HttpRequest, render_id) -> HttpResponse:
    require_editor(request)
    job = team_object_or_404(request, Render, render_id)
    services.render_delete(render=job)
    messages.success(request, f"“{job.title}” was deleted.")
    return redirect("renders:list")


@login_required
def render_captions_track(request: HttpRequest, render_id) -> HttpResponse:
    """The WebVTT track for the player, from the studio's own origin.

    In S3 mode the video plays from the bucket, but a <track> from another origin needs CORS
    on the bucket and a crossorigin player; a few kilobytes through the studio need neither.
    """
    job = team_object_or_404(request, Render, render_id)
    if not job.captions_vtt:
        raise Http404("This render has no captions.")
    with job.captions_vtt.open("rb") as handle:
        return HttpResponse(handle.read(), content_type="text/vtt; charset=utf-8")


@login_required
@cache_control(private=True, max_age=86400)
def voice_sample(request: HttpRequest) -> HttpResponse:
    voice_id = request.GET.get("voice", "")
    return HttpResponse(_sample_wav(voice_id), content_type="audio/wav")


@lru_cache(maxsize=64)
def _sample_wav(voice_id: str) -> bytes:
    voice = next((v for v in speech.list_voices() if v.id == voice_id), None)
    if voice is None:
        raise Http404("No such voice.")
    spoken = speech.synthesize(speech.sample_sentence(voice), voice=voice.id)
    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        speech.write_wav(handle.name, spoken.samples, spoken.sample_rate)
        return Path(handle.name).read_bytes()
