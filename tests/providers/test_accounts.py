import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from engine.errors import InputRejected
from providers import crypto, services
from providers.models import ProviderAccount
from renders.models import Render
from studio.models import Membership
from studio.services import user_create
from tests.factories import ready_avatar

SECRET = "a2e-live-SECRET-token-0123456789"
TENCENT = {"appkey": "tc-appkey-ABCDEF", "access_token": "tc-token-SECRET-98765"}
PASSWORD = "correct horse battery"


@pytest.fixture
def alice(db):
    return user_create(username="alice", password=PASSWORD)


@pytest.fixture
def team(alice):
    return alice.teams.get()


@pytest.fixture
def owner_client(client, alice):
    client.force_login(alice)
    return client


def add(client, **fields):
    data = {"provider": "a2e", "label": "Marketing", "api_key": SECRET, **fields}
    return client.post("/team/providers/accounts/new/", data)


def test_it_stores_credentials_encrypted_and_reads_them_back(team, alice):
    account = services.provider_account_create(team=team, user=alice, provider="tencent", label="Main",
                                               credentials=TENCENT)
    stored = ProviderAccount.objects.get(pk=account.pk)
    assert TENCENT["access_token"] not in stored.credentials_encrypted
    assert TENCENT["appkey"] not in stored.credentials_encrypted
    assert stored.credentials() == TENCENT
    assert stored.hint == "CDEF"
    assert SECRET not in repr(stored) and "tc-token" not in str(stored)


def test_it_reads_old_credentials_after_a_key_rotation_and_rewrites_them_under_the_new_key(team, alice, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PROVIDER_CREDENTIALS_KEYS = [old]
    account = services.provider_account_create(team=team, user=alice, provider="a2e", label="A",
                                               credentials={"api_key": SECRET})
    settings.PROVIDER_CREDENTIALS_KEYS = [new, old]
    assert ProviderAccount.objects.get(pk=account.pk).credentials() == {"api_key": SECRET}
    call_command("provider_credentials_rotate", stdout=open("/dev/null", "w"))
    settings.PROVIDER_CREDENTIALS_KEYS = [new]  # the old key dropped after the rotation
    assert ProviderAccount.objects.get(pk=account.pk).credentials() == {"api_key": SECRET}
    settings.PROVIDER_CREDENTIALS_KEYS = [old]
    with pytest.raises(crypto.CredentialsUnreadable):
        ProviderAccount.objects.get(pk=account.pk).credentials()


def test_it_refuses_an_account_missing_a_credential_the_provider_needs(team, alice):
    with pytest.raises(InputRejected, match="access_token"):
        services.provider_account_create(team=team, user=alice, provider="tencent", label="T",
                                         credentials={"appkey": "x"})


def test_an_owner_adds_an_account_and_the_key_never_comes_back_to_the_browser(owner_client, team, caplog):
    caplog.set_level(logging.DEBUG)
    page = owner_client.get("/team/")
    assert b'id="provider-accounts"' in page.content
    response = add(owner_client)
    assert response.status_code == 302
    account = ProviderAccount.objects.get(team=team)
    assert account.provider == "a2e" and account.label == "Marketing"
    page = owner_client.get("/team/")
    assert b"Marketing" in page.content and b"\xe2\x80\xa66789" in page.content  # …6789
    assert SECRET.encode() not in page.content
    assert account.credentials_encrypted.encode() not in page.content
    assert SECRET not in caplog.text


def test_a_refused_form_shows_the_fields_empty_again(owner_client, team):
    response = owner_client.post("/team/providers/accounts/new/",
                                 {"provider": "tencent", "label": "T", "appkey": "", "access_token": SECRET})
    assert response.status_code == 400
    assert b"Tencent needs its app key." in response.content
    assert SECRET.encode() not in response.content
    assert not ProviderAccount.objects.exists()


def test_editors_cannot_add_or_remove_accounts_nor_see_them(client, team, alice):
    bob = user_create(username="bob", password=PASSWORD)
    Membership.objects.create(team=team, user=bob, role=Membership.Role.EDITOR)
    account = services.provider_account_create(team=team, user=alice, provider="a2e", label="A",
                                               credentials={"api_key": SECRET})
    client.force_login(bob)
    assert b"provider-accounts" not in client.get("/team/").content
    assert add(client, label="B").status_code == 403
    assert client.post(f"/team/providers/accounts/{account.pk}/remove/").status_code == 403
    assert ProviderAccount.objects.count() == 1


def test_another_teams_account_cannot_be_removed_or_used(owner_client, team, alice):
    charlie = user_create(username="charlie", password=PASSWORD)
    theirs = services.provider_account_create(team=charlie.teams.get(), user=charlie, provider="a2e", label="C",
                                              credentials={"api_key": SECRET})
    assert owner_client.post(f"/team/providers/accounts/{theirs.pk}/remove/").status_code == 404
    assert ProviderAccount.objects.filter(pk=theirs.pk).exists()
    with pytest.raises(InputRejected, match="this team's provider accounts"):
        services.provider_account_for(team=team, choice=str(theirs.pk))
    assert services.provider_engine_choices(team=team) == [("local", "Built-in engine")]
    avatar = ready_avatar(team=team, user=alice, kind="video")
    render = Render.objects.create(team=team, avatar=avatar, created_by=alice, title="t", script="Hello there.")
    with pytest.raises(InputRejected, match="not in this team"):
        services.remote_job_create(render=render, account=theirs)


def test_the_admin_never_shows_the_credentials(client, team, alice):
    account = services.provider_account_create(team=team, user=alice, provider="tencent", label="Main",
                                               credentials=TENCENT)
    admin = user_create(username="root", password=PASSWORD)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    for url in ("/admin/providers/provideraccount/", f"/admin/providers/provideraccount/{account.pk}/change/"):
        page = client.get(url)
        assert page.status_code == 200
        assert b"Main" in page.content
        for secret in (*TENCENT.values(), account.credentials_encrypted):
            assert secret.encode() not in page.content


def test_the_render_form_gets_fields_for_the_chosen_providers_own_options():
    from providers.forms import provider_option_fields, provider_options_from

    fields = provider_option_fields("newportai")
    assert set(fields) == {"newportai_enhance", "newportai_original_fps"}  # NewportAI reads no script
    assert "tencent_voice" in provider_option_fields("tencent")
    assert provider_options_from("newportai", {"newportai_enhance": True, "newportai_original_fps": False}) == (
        "", {"enhance": True})
    assert provider_options_from("topview", {"topview_voice": " v-1 ", "topview_mode": "", "topview_caption_id": "c"}) == (
        "v-1", {"caption_id": "c"})
