from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from engine.errors import InputRejected
from providers import services
from providers.forms import ProviderAccountForm
from providers.models import ProviderAccount
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


@csrf_exempt
@require_POST
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    """A provider's notice that a task moved on: verified, and only hastens the next poll."""
    from django.conf import settings

    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    accepted = services.provider_callback(provider=provider, url=url, headers=dict(request.headers), body=request.body)
    return HttpResponse(status=204 if accepted else 403)
