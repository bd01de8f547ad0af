from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from avatars.models import Avatar
from engine.errors import InputRejected
from engine.remote import ProviderError
from providers import crypto, services
from providers.forms import CustomisationForm, ProviderAccountForm
from providers.models import ProviderAccount, ProviderAvatar
from studio.access import require_owner, team_object_or_404


@login_required
@require_POST
def account_create(request: HttpRequest) -> HttpResponse:
    require_owner(request)
    form = ProviderAccountForm(request.POST)
    if form.is_valid():
        try:
            account = services.provider_account_create(
                team=request.team, user=request.user, provider=form.cleaned_data["provider"],
                label=form.cleaned_data["label"], credentials=form.credentials())
        except InputRejected as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            messages.success(request, f"{account.provider_label} account “{account.label}” added. Its key is stored "
                                      "encrypted and will not be shown again.")
            return redirect("/team/#provider-accounts")
    return render(request, "providers/account_form_page.html", {"form": form}, status=400)


@login_required
@require_POST
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    require_owner(request)
    account = team_object_or_404(request, ProviderAccount, account_id)
    services.provider_account_delete(account=account)
    messages.success(request, f"{account.provider_label} account “{account.label}” removed.")
    return redirect("/team/#provider-accounts")


@login_required
def customise(request: HttpRequest) -> HttpResponse:
    """Customise one of the team's avatars at a provider that has a customisation of its own (Tencent)."""
    require_owner(request)
    accounts = services.provider_customisation_accounts(team=request.team)
    avatars = Avatar.objects.filter(team=request.team, status=Avatar.Status.READY).order_by("name")
    if not accounts:
        messages.info(request, "Add a Tencent account first: customisation happens on the team's own account.")
        return redirect("/team/#provider-accounts")
    form = CustomisationForm(request.POST or None, accounts=accounts, avatars=avatars)
    if request.method == "POST" and form.is_valid():
        account = form.cleaned_data["account"]
        try:
            made = services.provider_avatar_customise(
                avatar=form.cleaned_data["avatar"], account=account, user=request.user,
                name=form.cleaned_data["name"], gender=form.cleaned_data["gender"],
                material_url=form.cleaned_data["source"], options=form.options())
        except InputRejected as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        except ProviderError as error:
            form.add_error(None, str(error))
        except crypto.CredentialsUnreadable:
            form.add_error("account", "The studio can no longer read this account's key; remove the account and "
                                      "add it again.")
        else:
            messages.success(request, f"Sent to {account.provider_label} (task {made.task_id}). The team page shows "
                                      "how it is going; Tencent may ask you to confirm the demo in its console.")
            return redirect("/team/#provider-avatars")
    elif request.method == "GET":
        first = next(iter(form.avatars.values()), None)
        if first is not None:
            form.initial.update(gender=first.gender or "female")
    status = 400 if request.method == "POST" else 200
    return render(request, "providers/customise_page.html", {"form": form}, status=status)


@login_required
@require_POST
def customisation_check(request: HttpRequest, provider_avatar_id: int) -> HttpResponse:
    require_owner(request)
    pa = get_object_or_404(ProviderAvatar, pk=provider_avatar_id, account__team=request.team)
    pa = services.provider_avatar_check(provider_avatar_id=pa.pk)
    messages.info(request, f"{pa.account.provider_label} says: {pa.get_status_display()}"
                           f"{' — ' + pa.note if pa.note else ''}.")
    return redirect("/team/#provider-avatars")


@csrf_exempt
@require_POST
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    """A provider's notice that a task moved on: verified, and only hastens the next poll."""
    from django.conf import settings

    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    accepted = services.provider_callback(provider=provider, url=url, headers=dict(request.headers), body=request.body)
    return HttpResponse(status=204 if accepted else 403)
