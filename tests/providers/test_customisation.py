"""A team owner customises one of the team's avatars at Tencent from files on Tencent COS, from the
team page, and follows it there until Tencent hands back the avatar's key.

respx stands in for Tencent; the studio's pages, services and database are real.
"""

import json
import logging
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from providers import services
from providers.models import ProviderAvatar
from studio.models import Membership
from studio.services import user_create
from tests.factories import ready_avatar

PASSWORD = "correct horse battery"
TC = {"appkey": "tc-appkey-4321", "access_token": "tc-live-SECRET-token-custom"}
MAKE = "https://gw-sg.tvs.qq.com/v2/ivh/assetmanager/customservice/make"
PROGRESS = "https://gw-sg.tvs.qq.com/v2/ivh/assetmanager/customservice/getprogress"
COS = "https://ivh-1250000000.cos.ap-guangzhou.myqcloud.com/customer-pipeline/1250000000/7a1c"


def tc(payload, code=0, message=""):
    return httpx.Response(200, json={"Header": {"Code": code, "Message": message, "RequestID": "r"},
                                     "Payload": payload})


@pytest.fixture
def world(db, client, caplog, monkeypatch, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    alice = user_create(username="alice", password=PASSWORD)
    team = alice.teams.get()
    client.force_login(alice)
    checks = []
    # The next scheduled check would run at once with eager tasks; the tests run each one themselves.
    monkeypatch.setattr(services, "enqueue_avatar_check", lambda pk, countdown: checks.append((pk, countdown)))

    class World:
        pass

    w = World()
    w.alice, w.team, w.client, w.checks = alice, team, client, checks
    w.on_commit = django_capture_on_commit_callbacks
    w.video = ready_avatar(team=team, user=alice, kind="video", name="Presenter")
    w.photo = ready_avatar(team=team, user=alice, kind="photo", name="Headshot", gender="male")
    w.account = services.provider_account_create(team=team, user=alice, provider="tencent", label="TC",
                                                 credentials=TC)
    yield w
    for secret in TC.values():
        assert secret not in caplog.text
    assert "signature=" not in caplog.text  # httpx would log Tencent's signed URLs whole


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


def form(world, **fields):
    data = {"account": str(world.account.pk), "avatar": str(world.video.pk), "name": "Presenter_blue_suit",
            "gender": "female", "source": f"{COS}/video/presenter.mp4", "make_type": "IMAGE_GENERAL",
            "identity_video_url": f"{COS}/idcard/consent.mp4"}
    data.update(fields)
    with world.on_commit(execute=True):
        return world.client.post("/team/providers/customise/", data)


def test_the_team_page_leads_an_owner_to_the_form_only_with_a_tencent_account(world):
    page = world.client.get("/team/")
    assert b'href="/team/providers/customise/"' in page.content
    page = world.client.get("/team/providers/customise/")
    assert page.status_code == 200
    assert b"Material on Tencent COS" in page.content and b"Presenter (video)" in page.content
    world.account.delete()
    assert b'href="/team/providers/customise/"' not in world.client.get("/team/").content
    assert world.client.get("/team/providers/customise/").status_code == 302


def test_a_video_customisation_is_sent_as_the_document_shows_and_followed_to_its_key(world, mock):
    make = mock.post(MAKE).mock(return_value=tc({"TaskId": "make-1"}))
    progress = mock.post(PROGRESS).mock(side_effect=[
        tc({"Status": "MAKING", "StageV2": "CONFIRM", "StatusV2": "WAIT_PROCESS"}),
        tc({"Status": "MAKING", "StageV2": "AUDIT", "StatusV2": "PROCESSING"}),
        tc({"Status": "SUCCESS", "StageV2": "FINISH", "StatusV2": "SUCCESS", "VirtualmanKey": "vk-presenter-1"}),
    ])
    response = form(world, notes="Blue suit, studio light", keep_background="on")
    assert response.status_code == 302 and response["Location"] == "/team/#provider-avatars"

    request = make.calls.last.request
    assert request.method == "POST" and request.headers["Content-Type"] == "application/json;charset=utf-8"
    query = parse_qs(urlsplit(str(request.url)).query)
    assert set(query) == {"appkey", "timestamp", "signature"} and query["appkey"] == [TC["appkey"]]
    assert json.loads(request.content) == {"Header": {}, "Payload": {
        "AnchorName": "Presenter_blue_suit", "MakeType": "IMAGE_GENERAL", "SexType": "FEMALE",
        "MaterialCosUrl": f"{COS}/video/presenter.mp4", "IdentityCosUrl": f"{COS}/idcard/consent.mp4",
        "Notes": "Blue suit, studio light", "IsHaveBackground": True}}

    made = ProviderAvatar.objects.get(avatar=world.video, account=world.account)
    assert (made.status, made.task_id, made.created_by) == (ProviderAvatar.Status.TRAINING, "make-1", world.alice)
    assert world.checks == [(made.pk, services.CUSTOMISATION_CHECK_SECONDS)]

    services.provider_avatar_check(provider_avatar_id=made.pk, scheduled=True)
    page = world.client.get("/team/").content.decode()
    assert "waiting for the demo video to be confirmed in its console" in page and "Check now" in page
    assert "as Presenter_blue_suit" in page

    response = world.client.post(f"/team/providers/customise/{made.pk}/check/")  # the owner's "Check now"
    assert response.status_code == 302
    assert "reviews the material by hand" in ProviderAvatar.objects.get(pk=made.pk).note
    assert len(world.checks) == 2  # the page's check books no second schedule

    services.provider_avatar_check(provider_avatar_id=made.pk, scheduled=True)
    made.refresh_from_db()
    assert (made.status, made.provider_avatar_id, made.note) == (ProviderAvatar.Status.READY, "vk-presenter-1", "")
    assert len(world.checks) == 2  # finished: no further checks
    assert json.loads(progress.calls.last.request.content) == {"Header": {}, "Payload": {"TaskId": "make-1"}}
    page = world.client.get("/team/").content.decode()
    assert "vk-presenter-1" in page and "Check now" not in page
    assert TC["access_token"] not in page

    admin = user_create(username="root", password=PASSWORD)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    world.client.force_login(admin)
    screen = world.client.get(f"/admin/providers/provideravatar/{made.pk}/change/")
    assert screen.status_code == 200 and b"vk-presenter-1" in screen.content
    assert all(secret.encode() not in screen.content for secret in TC.values())


def test_a_photo_avatar_is_a_photo_customisation_without_a_letter(world, mock):
    make = mock.post(MAKE).mock(return_value=tc({"TaskId": "make-2"}))
    response = form(world, avatar=str(world.photo.pk), name="Headshot", gender="male", make_type="",
                    identity_video_url="", source=f"{COS}/photo/headshot_front.png")
    assert response.status_code == 302
    sent = json.loads(make.calls.last.request.content)["Payload"]
    assert sent == {"AnchorName": "Headshot", "MakeType": "IMAGE_PHOTO", "SexType": "MALE",
                    "MaterialCosUrl": f"{COS}/photo/headshot_front.png"}


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"source": "https://studio.example.com/media/presenter.mp4"}, "source",
     "must be uploaded to Tencent COS under a …/video/ path"),
    ({"identity_video_url": ""}, "identity_video_url", "needs an authorisation letter"),
    ({"identity_video_url": f"{COS}/video/consent.mp4"}, "identity_video_url", "…/idcard/ path"),
    ({"name": "Presenter, sitting pose"}, "name", "no spaces"),
    ({"source": f"{COS}/video/presenter.avi"}, "source", "MP4 or MOV"),
    ({"demo_audio_url": f"{COS}/video/hello.wav"}, "demo_audio_url", "…/audio/ path"),
    ({"notes": "x" * 101}, "notes", "up to 100 characters"),
])
def test_what_tencent_would_refuse_is_refused_on_the_form_with_nothing_sent(world, mock, fields, field, words):
    make = mock.post(MAKE).mock(return_value=tc({"TaskId": "never"}))
    response = form(world, **fields)
    assert response.status_code == 400
    page = response.content.decode()
    section = page.split(f'id="field-{field}"', 1)[1].split('<div class="field', 1)[0]
    assert words in section, section
    assert make.call_count == 0 and not ProviderAvatar.objects.exists()


def test_tencents_own_refusal_is_shown_and_the_owner_can_send_again(world, mock):
    make = mock.post(MAKE).mock(side_effect=[
        tc({}, code=400, message="AnchorName already exists"),
        tc({"TaskId": "make-3"}),
    ])
    response = form(world)
    assert response.status_code == 400
    assert "AnchorName already exists" in response.content.decode()
    assert ProviderAvatar.objects.get().status == ProviderAvatar.Status.FAILED
    assert form(world, name="Presenter_2").status_code == 302
    made = ProviderAvatar.objects.get()
    assert (made.status, made.task_id, made.error) == (ProviderAvatar.Status.TRAINING, "make-3", "")
    assert make.call_count == 2
    response = form(world, name="Presenter_3")
    assert "already training" in response.content.decode() and make.call_count == 2


def test_a_check_that_fails_says_so_and_keeps_checking(world, mock):
    mock.post(MAKE).mock(return_value=tc({"TaskId": "make-4"}))
    mock.post(PROGRESS).mock(return_value=httpx.Response(503))
    form(world)
    made = ProviderAvatar.objects.get()
    services.provider_avatar_check(provider_avatar_id=made.pk, scheduled=True)
    made.refresh_from_db()
    assert made.status == ProviderAvatar.Status.TRAINING
    assert made.note.startswith("The last check at Tencent failed:")
    assert len(world.checks) == 2


def test_editors_cannot_customise(world, client):
    bob = user_create(username="bob", password=PASSWORD)
    Membership.objects.create(team=world.team, user=bob, role=Membership.Role.EDITOR)
    client.force_login(bob)
    assert client.get("/team/providers/customise/").status_code == 403
    assert form(world).status_code == 403


def test_a_finished_customisation_without_a_key_points_to_the_console_and_a_failed_one_says_why(world, mock):
    mock.post(MAKE).mock(side_effect=[tc({"TaskId": "make-5"}), tc({"TaskId": "make-6"})])
    mock.post(PROGRESS).mock(side_effect=[
        tc({"Status": "SUCCESS", "StageV2": "FINISH", "StatusV2": "SUCCESS"}),
        tc({"Status": "FAIL", "StageV2": "AUDIT", "StatusV2": "FAIL", "FailMessage": "authorisation letter unclear"}),
    ])
    form(world)
    form(world, avatar=str(world.photo.pk), name="Headshot", gender="male", identity_video_url="",
         make_type="", source=f"{COS}/photo/headshot.png")
    video, photo = (ProviderAvatar.objects.get(avatar=a) for a in (world.video, world.photo))
    services.provider_avatar_check(provider_avatar_id=video.pk, scheduled=True)
    services.provider_avatar_check(provider_avatar_id=photo.pk, scheduled=True)
    video.refresh_from_db()
    photo.refresh_from_db()
    assert video.status == ProviderAvatar.Status.READY and "in the Tencent console" in video.note
    assert photo.status == ProviderAvatar.Status.FAILED and "authorisation letter unclear" in photo.error
    assert len(world.checks) == 2  # one booked by each submission, none after the end
    page = world.client.get("/team/").content.decode()
    assert "authorisation letter unclear" in page and "in the Tencent console" in page


def test_a_customisation_lost_mid_request_is_not_sent_again_unasked(world, mock):
    from datetime import timedelta

    from django.utils import timezone

    make = mock.post(MAKE).mock(return_value=tc({"TaskId": "make-7"}))
    lost = ProviderAvatar.objects.create(avatar=world.video, account=world.account,
                                         status=ProviderAvatar.Status.STARTING)
    ProviderAvatar.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    response = form(world)
    assert response.status_code == 400 and "check the Tencent account" in response.content.decode()
    assert make.call_count == 0
    assert ProviderAvatar.objects.get(pk=lost.pk).status == ProviderAvatar.Status.FAILED
    assert form(world).status_code == 302 and make.call_count == 1  # the owner, having looked, sends it
